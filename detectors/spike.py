"""Spikes: robust z-score of each sample against the median of the last few (Hampel)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.base import Quality
from detectors.buckets import median_prefix
from detectors.cadence import at_least, observe_period
from detectors.channels import (
    ChannelDetector,
    Debounce,
    StateSpec,
    cadence_spec,
    check,
    check_finite,
    check_levels,
    check_shapes,
    hysteresis_spec,
)
from detectors.grading import debounce, level_held, level_past, level_score

__all__ = ["SpikeParams", "SpikeDetector"]

_SUSPECT = int(Quality.SUSPECT)
_MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its sd


@dataclass
class SpikeParams(Debounce):
    """Per-channel parameters (n channels).

    `z_fault`: robust z at or above which a sample is a spike (quality mode). `min_scale`: floor
    of the robust sd (set it to the sensor's resolution: on a flat, quantised signal the MAD is 0
    and one LSB would otherwise be a spike). `max_age_s`: samples older than this leave the
    reference window (irregular sampling: a sample after a long gap is compared only with recent
    ones). `min_samples` (>= 3): reference samples needed before judging. `safety`: False
    (default) = a spike is a sensor-quality verdict (fault 1, suspect) on that sample; True =
    graded by `z_levels` [n, 4] / `z_restore` [n, 4] with the usual debounce (`raise_samples`
    ... `red_immediate`).
    """

    z_fault: np.ndarray  # float64[n]
    min_scale: np.ndarray  # float64[n]
    max_age_s: np.ndarray  # float64[n]
    min_samples: np.ndarray  # int32[n]
    safety: np.ndarray  # bool[n]
    z_levels: np.ndarray  # float64[n, 4]
    z_restore: np.ndarray  # float64[n, 4]

    @classmethod
    def defaults(cls, n: int) -> SpikeParams:
        """z 5 (rarer than Hampel's textbook 3: field noise has heavy tails), scale floor 1e-9,
        window age 1 h, 5 samples to start, quality mode; safety levels z 4 / 6 / 8 / 10 for
        channels switched to safety, one sample to raise (a spike is short)."""
        deb = cls.debounce_defaults(n)
        deb["raise_samples"][:] = 1
        return cls(z_fault=np.full(n, 5.0), min_scale=np.full(n, 1e-9),
                   max_age_s=np.full(n, 3600.0), min_samples=np.full(n, 5, np.int32),
                   safety=np.zeros(n, np.bool_), z_levels=np.tile([4.0, 6.0, 8.0, 10.0], (n, 1)),
                   z_restore=np.tile([3.0, 5.0, 7.0, 9.0], (n, 1)), **deb)

    @property
    def n(self) -> int:
        return len(self.z_fault)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self, ("z_levels", "z_restore"))
        check_finite(self, ("z_fault", "min_scale", "max_age_s"), strict=True)
        check(np.asarray(self.min_samples) < 3, "min_samples must be >= 3")
        check_levels(self.z_levels, self.z_restore, "z_levels")
        self.check_debounce()


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, scratch, out_score, out_grade, out_fault, out_ev):
    rn, rh, cn, ch, red, z_fault, min_scale, max_age, min_n, safety, z_levels, z_restore = P
    grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl, buf, buf_t, pos, score, c_t, c_ldt, c_n = S
    out_fault[j] = 0
    out_ev[j, 0] = np.nan
    out_ev[j, 1] = np.nan
    out_ev[j, 2] = np.nan
    if ok and np.isfinite(v):
        K = buf.shape[1]
        # the reference window holds the last K samples at any cadence
        age = at_least(max_age[i], K, observe_period(i, t, c_t, c_ldt, c_n))
        m = 0
        for u in range(K):  # the reference: the last K samples not older than max_age
            if np.isfinite(buf_t[i, u]) and t - buf_t[i, u] <= age:
                scratch[m] = buf[i, u]
                m += 1
        if m >= min_n[i]:
            med = median_prefix(scratch, m)
            for u in range(m):
                scratch[u] = abs(scratch[u] - med)
            mad = median_prefix(scratch, m)
            scale = max(_MAD_TO_SD * mad, min_scale[i])
            z = abs(v - med) / scale
            out_ev[j, 0] = med
            out_ev[j, 1] = scale
            out_ev[j, 2] = z
            if safety[i]:
                score[i] = level_score(z, z_levels, i)
                debounce(i, t, level_past(z, z_levels, i), level_held(z, z_restore, i),
                         (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl), (rn, rh, cn, ch, red))
            else:
                score[i] = 0.0  # a sensor-quality verdict is no step toward a colour
                if z >= z_fault[i]:
                    out_fault[j] = _SUSPECT
        # the sample joins the reference either way: the median shrugs off a lone spike, and a
        # lasting step becomes the new reference after half a window (CUSUM reports steps)
        buf[i, pos[i]] = v
        buf_t[i, pos[i]] = t
        pos[i] = (pos[i] + 1) % K
    out_score[j] = score[i]
    out_grade[j] = grade[i]


@numba.njit(cache=True, nogil=True, _nrt=False)
def _row(idx, t, x, valid, P, S, scratch, out_score, out_grade, out_fault, out_ev):
    """One time step for the channels idx, in order: the one compiled copy of `_step` (inlined
    here), called once per time step by both kernels. Compiled without numba's reference counting
    (`_nrt=False`: it allocates nothing, and every array it sees belongs to its caller for the
    call), which otherwise increments and decrements every array of P and S for each
    channel-sample and cost several times the rule itself (docs/contracts.md#detector-protocol)."""
    for j in range(idx.shape[0]):
        _step(idx[j], j, t, x[j], valid[j], P, S, scratch, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _update_kernel(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """The live path: one sample at time t for the channels idx (in order)."""
    scratch = np.empty(S[7].shape[1])
    _row(idx, t, x, valid, P, S, scratch, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _block_kernel(t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """Replay: row r is `_update_kernel` over every channel at t[r] (the same `_row`)."""
    scratch = np.empty(S[7].shape[1])
    cols = np.arange(x.shape[1])
    for r in range(x.shape[0]):
        _row(cols, t[r], x[r], valid[r], P, S, scratch, out_score[r], out_grade[r],
             out_fault[r], out_ev[r])


class SpikeDetector(ChannelDetector):
    """Hampel filter as a streaming detector: is this sample far from the recent median?

    Each channel keeps its last `window` valid samples (a small fixed ring, not a time series).
    A new sample's robust z-score is |x - median| / (1.4826 MAD), the MAD floored at
    `min_scale`; the reference holds only samples younger than `max_age_s` (or `window` sample
    periods, when the channel's cadence is slower) and needs
    `min_samples` of them. Median and MAD ignore a few wild samples, so a spike cannot hide the
    next one the way it inflates a mean and sd.

    What a spike means is configured per channel: by default a sensor-quality verdict (fault 1,
    suspect) on that sample only, never a grade (score 0); with `safety` the z is
    graded by `z_levels` with the usual debounce (a gas burst on a channel where that matters).

    evidence (`evidence_names`): "median", "scale" (the robust sd), "z"; NaN when the sample was
    not judged (invalid, or too few reference samples).

    Parameters
    ----------
    params : SpikeParams
        One entry per channel; validated here.
    window : int
        Reference samples kept per channel (3..63, default 15), the same for all channels.

    References
    ----------
    Hampel, F. R. (1974). The influence curve and its role in robust estimation. JASA 69(346),
    383-393, doi:10.1080/01621459.1974.10482962. Pearson, R. K. et al. (2016). Generalized
    Hampel filters. EURASIP J. Adv. Signal Process. 2016:87, doi:10.1186/s13634-016-0383-6.

    Examples
    --------
    A CO sensor reading 5 ppm with 0.1 ppm of noise and one glitch of 40 ppm:

    >>> det = SpikeDetector(SpikeParams.defaults(1))
    >>> x = 5.0 + 0.1 * np.sin(np.arange(40.0))
    >>> x[30] = 40.0
    >>> out = det.run(np.arange(40.0) * 10, x[:, None])
    >>> np.flatnonzero(out.fault[:, 0]).tolist(), int(out.grade.max())
    ([30], 0)
    >>> round(float(out.evidence[31, 0, 2]), 1)  # the next sample is judged as usual
    0.3
    """

    name = "spike"
    evidence_names = ("median", "scale", "z")

    def __init__(self, params: SpikeParams, window: int = 15):
        if not 3 <= int(window) <= 63:
            raise ValueError(f"window must be 3..63 samples, got {window}")
        self.window = int(window)
        super().__init__(params)

    def _state_spec(self) -> StateSpec:
        spec = hysteresis_spec()
        spec["buf"] = (np.float64, (self.window,), np.nan)
        spec["buf_t"] = (np.float64, (self.window,), np.nan)
        spec["pos"] = (np.int32, (), 0)
        spec["score"] = (np.float32, (), 0.0)
        spec.update(cadence_spec())
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = SpikeDetector(SpikeParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
