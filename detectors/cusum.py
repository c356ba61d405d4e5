"""Level shifts and drift: two-sided CUSUM on a self-adapting baseline (Page 1954)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.base import Quality
from detectors.cadence import at_least, observe_period
from detectors.channels import (
    ChannelDetector,
    StateSpec,
    cadence_spec,
    check,
    check_finite,
    check_shapes,
)

__all__ = ["CusumParams", "CusumDetector", "expected_delay"]

_SUSPECT = int(Quality.SUSPECT)


def expected_delay(delta: float, k: float = 0.5, h: float = 5.0) -> float:
    """Samples from a step of delta (in standard deviations) to the alarm, for delta > k.

    Page's CUSUM climbs by about delta - k a sample, so it crosses h after about h / (delta - k)
    samples; Siegmund's correction adds the overshoot: (h + 1.166) / (delta - k).

    >>> round(expected_delay(2.0), 2)
    4.11
    """
    if delta <= k:
        raise ValueError(f"a step of {delta} sd is not above the reference value k = {k}")
    return (h + 1.166) / (delta - k)


@dataclass
class CusumParams:
    """Per-channel parameters (n channels).

    `k`: reference value (sd): half the smallest shift worth detecting. `h`: decision interval
    (sd). `warmup`: valid samples that set the first baseline (mean and sd).
    `tau_s`: time constant (s) of the baseline's adaptation afterwards (slow drift of the normal
    level is followed; a shift faster than this is caught). `min_sd`: floor of the sd (the
    sensor's resolution: a perfectly flat warm-up must not make every LSB a shift). `hold_s`:
    how long a verdict stays after the last detection. `safety`: False (default) = a detection
    is a sensor-quality verdict (fault 1, suspect); True = a safety grade `grade_level` (1..4).
    """

    k: np.ndarray  # float64[n]
    h: np.ndarray  # float64[n]
    warmup: np.ndarray  # int32[n]
    tau_s: np.ndarray  # float64[n]
    min_sd: np.ndarray  # float64[n]
    hold_s: np.ndarray  # float64[n]
    safety: np.ndarray  # bool[n]
    grade_level: np.ndarray  # int8[n]

    @classmethod
    def defaults(cls, n: int) -> CusumParams:
        """k 1, h 5: shifts of 2 sd and more, caught in about 6 samples, with an in-control
        run of about 10^5 samples a side (Siegmund's approximation; the textbook k 0.5, h 5 gives
        465, a false verdict every 78 minutes at 10-second polling). 30 warm-up samples,
        baseline time constant 1 day, sd floor 1e-6, verdict held 1 h, quality verdict."""
        return cls(k=np.full(n, 1.0), h=np.full(n, 5.0), warmup=np.full(n, 30, np.int32),
                   tau_s=np.full(n, 86400.0), min_sd=np.full(n, 1e-6), hold_s=np.full(n, 3600.0),
                   safety=np.zeros(n, np.bool_), grade_level=np.ones(n, np.int8))

    @property
    def n(self) -> int:
        return len(self.k)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self)
        check_finite(self, ("k", "hold_s"))
        check_finite(self, ("h", "tau_s", "min_sd"), strict=True)
        check(np.asarray(self.warmup) < 2, "warmup must be >= 2 samples")
        g = np.asarray(self.grade_level)
        check((g < 1) | (g > 4), "grade_level must be 1..4")


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, out_score, out_grade, out_fault, out_ev):
    k, h, warmup, tau_s, min_sd, hold_s, safety, grade_level = P
    warm_n, mean, m2, mu, sd, sp, sn, np_, nn, t_last, until, shift, score, c_t, c_ldt, c_n = S
    if ok and np.isfinite(v):
        period = observe_period(i, t, c_t, c_ldt, c_n)
        if warm_n[i] < warmup[i]:  # Welford's running mean and variance for a baseline
            warm_n[i] += 1
            d = v - mean[i]
            mean[i] += d / warm_n[i]
            m2[i] += d * (v - mean[i])
            if warm_n[i] == warmup[i]:
                mu[i] = mean[i]
                sd[i] = max(np.sqrt(m2[i] / (warm_n[i] - 1)), min_sd[i])
        else:
            z = (v - mu[i]) / sd[i]
            sp[i] = max(0.0, sp[i] + z - k[i])
            sn[i] = max(0.0, sn[i] - z - k[i])
            np_[i] = np_[i] + 1 if sp[i] > 0 else 0
            nn[i] = nn[i] + 1 if sn[i] > 0 else 0
            if sp[i] > h[i] or sn[i] > h[i]:
                # the estimate of the new level (Page; Montgomery 9.1): mu + sd (k + S / N)
                if sp[i] >= sn[i]:
                    shift[i] = sd[i] * (k[i] + sp[i] / max(np_[i], 1))
                else:
                    shift[i] = -sd[i] * (k[i] + sn[i] / max(nn[i], 1))
                # restart: learn the new baseline (mean and sd) from the next `warmup` samples,
                # so a lasting shift gives one verdict, not one per sample; moving mu by the
                # estimate instead lets a false alarm's biased estimate cascade into more
                warm_n[i] = 0
                mean[i] = 0.0
                m2[i] = 0.0
                score[i] = 1.0 if safety[i] else 0.0
                sp[i] = 0.0
                sn[i] = 0.0
                np_[i] = 0
                nn[i] = 0
                until[i] = t + at_least(hold_s[i], 1.0, period)
            else:
                # 0.5 at the decision interval in safety mode; a quality verdict scores nothing
                score[i] = min(1.0, 0.5 * max(sp[i], sn[i]) / h[i]) if safety[i] else 0.0
                dt = t - t_last[i] if np.isfinite(t_last[i]) else 0.0
                a = 1.0 - np.exp(-max(dt, 0.0) / at_least(tau_s[i], 30.0, period))
                zc = min(max(z, -3.0), 3.0)  # winsorised: one outlier cannot drag the baseline
                mu[i] += a * sd[i] * zc
                sd[i] = max(np.sqrt((1.0 - a) * sd[i] * sd[i] + a * sd[i] * sd[i] * zc * zc),
                            min_sd[i])
        t_last[i] = t
    flagged = np.isfinite(until[i]) and t <= until[i]  # hold_s 0: the detecting sample only
    out_fault[j] = _SUSPECT if flagged and not safety[i] else 0
    out_grade[j] = grade_level[i] if flagged and safety[i] else 0
    out_score[j] = score[i]
    out_ev[j, 0] = sp[i]
    out_ev[j, 1] = sn[i]
    out_ev[j, 2] = shift[i]
    out_ev[j, 3] = mu[i] if warm_n[i] >= warmup[i] else np.nan


@numba.njit(cache=True, nogil=True, _nrt=False)
def _row(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """One time step for the channels idx, in order: the one compiled copy of `_step` (inlined
    here), called once per time step by both kernels. Compiled without numba's reference counting
    (`_nrt=False`: it allocates nothing, and every array it sees belongs to its caller for the
    call), which otherwise increments and decrements every array of P and S for each
    channel-sample and cost several times the rule itself (docs/contracts.md#detector-protocol)."""
    for j in range(idx.shape[0]):
        _step(idx[j], j, t, x[j], valid[j], P, S, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _update_kernel(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """The live path: one sample at time t for the channels idx (in order)."""
    _row(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _block_kernel(t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """Replay: row r is `_update_kernel` over every channel at t[r] (the same `_row`)."""
    cols = np.arange(x.shape[1])
    for r in range(x.shape[0]):
        _row(cols, t[r], x[r], valid[r], P, S, out_score[r], out_grade[r],
             out_fault[r], out_ev[r])


class CusumDetector(ChannelDetector):
    """Two-sided CUSUM for level shifts and drift against a baseline that adapts slowly.

    After `warmup` samples set the baseline mean mu and sd, each sample's z = (x - mu) / sd
    feeds S+ = max(0, S+ + z - k) and S- = max(0, S- - z - k); either above h is a detection.
    The detector then restarts: it learns a new baseline from the next `warmup` samples, so a
    lasting step gives one verdict, not one per sample; the verdict holds for `hold_s` after the
    last detection (and at least through the re-learning). Between detections the baseline follows slow changes with time constant `tau_s`
    (winsorised at 3 sd). For a step of delta sd (delta > k) the expected delay is about
    h / (delta - k) samples, (h + 1.166) / (delta - k) with Siegmund's overshoot correction
    (`expected_delay`).

    What a detection means is configured per channel: by default it is a sensor-quality verdict
    (fault 1, suspect: a calibration jump, a drifting sensor), never a grade; with `safety` it is
    the grade `grade_level` instead (for a point where a sudden shift is itself the hazard).
    score: in safety mode 0.5 x max(S+, S-) / h (0.5 at the decision interval), 1 at a detection;
    0 in quality mode (a sensor verdict is no step toward a colour). The baseline's time
    constant is at least 30 sample periods and a verdict holds at least one period, at any
    cadence.

    evidence (`evidence_names`): "s_pos", "s_neg" (the statistics, sd units), "shift" (the last
    detected shift, signed, in the value's units), "baseline" (mu; NaN while warming up).

    Parameters
    ----------
    params : CusumParams
        One entry per channel; validated here.

    References
    ----------
    Page, E. S. (1954). Continuous inspection schemes. Biometrika 41(1/2), 100-115,
    doi:10.1093/biomet/41.1-2.100. Siegmund, D. (1985). Sequential Analysis, Springer
    (the 1.166 overshoot). Montgomery, D. C. Introduction to Statistical Quality Control, ch. 9.

    Examples
    --------
    A pressure of 10.0 +- 0.1 that steps up by 0.4 (4 sd) at sample 50:

    >>> det = CusumDetector(CusumParams.defaults(1))
    >>> x = 10.0 + 0.1 * np.tile([1.0, -1.0], 50) + np.where(np.arange(100) >= 50, 0.4, 0.0)
    >>> out = det.run(np.arange(100.0), x[:, None])
    >>> int(np.argmax(out.fault[:, 0] == 1)), int(out.fault[:, 0].max()), int(out.grade.max())
    (51, 1, 0)
    >>> round(float(out.evidence[51, 0, 2]), 2), round(float(out.evidence[-1, 0, 3]), 2)
    (0.4, 10.4)
    """

    name = "cusum"
    evidence_names = ("s_pos", "s_neg", "shift", "baseline")

    def _state_spec(self) -> StateSpec:
        spec: StateSpec = {"warm_n": (np.int32, (), 0)}
        for key in ("mean", "m2", "mu", "sd", "s_pos", "s_neg"):
            spec[key] = (np.float64, (), 0.0)
        spec["n_pos"] = (np.int64, (), 0)
        spec["n_neg"] = (np.int64, (), 0)
        spec["t_last"] = (np.float64, (), np.nan)
        spec["until"] = (np.float64, (), np.nan)
        spec["shift"] = (np.float64, (), np.nan)
        spec["score"] = (np.float32, (), 0.0)
        spec.update(cadence_spec())
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = CusumDetector(CusumParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
