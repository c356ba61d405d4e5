"""Abrupt steps: a displacement or a level that jumps to a new value and stays there."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.cadence import at_least, observe_period
from detectors.channels import (
    ChannelDetector,
    StateSpec,
    cadence_spec,
    check,
    check_finite,
    check_jump_z,
    check_shapes,
    jump_spec,
)
from detectors.grading import level_past, level_score
from detectors.jumps import STEP, jump_scale, jump_step

__all__ = ["StepParams", "StepDetector"]


@dataclass
class StepParams:
    """Per-channel parameters (n channels).

    `jump_z`: a sample that departs from the channel's trend by this many increment scales is a
    jump; the next sample decides whether it was a step (it stays) or a spike (it goes back: the
    stuck detector's fault). `direction`: which step is worse: +1 up, -1 down, 2 either.
    `z_levels` [n, 4]: blue, yellow, orange, red by the step's size in increment scales (NaN =
    unused; learned detection: blue and yellow only by default). `size_levels` [n, 4]: by its
    size in the value's units instead, where a design gives them (any set level replaces
    `z_levels`). `hold_s`: how long a step stays an alarm (and at least 3 sample periods); after
    that the new level is the normal one.
    """

    jump_z: np.ndarray  # float64[n]
    direction: np.ndarray  # int8[n]
    z_levels: np.ndarray  # float64[n, 4]
    size_levels: np.ndarray  # float64[n, 4]
    hold_s: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> StepParams:
        """Jumps at 10 increment scales, either direction, blue from 10 and yellow from 30
        scales, held 1 day."""
        return cls(jump_z=np.full(n, 10.0), direction=np.full(n, 2, np.int8),
                   z_levels=np.tile([10.0, 30.0, np.nan, np.nan], (n, 1)),
                   size_levels=np.full((n, 4), np.nan), hold_s=np.full(n, 86400.0))

    @property
    def n(self) -> int:
        return len(self.jump_z)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self, ("z_levels", "size_levels"))
        check(~np.isin(self.direction, (1, -1, 2)), "direction must be 1, -1 or 2")
        check_jump_z(self)
        check_finite(self, ("hold_s",))
        for name in ("z_levels", "size_levels"):
            a = np.asarray(getattr(self, name), np.float64)
            is_set = ~np.isnan(a)
            check((is_set & ~(np.isfinite(a) & (a > 0))).any(axis=1),
                  f"{name}: levels must be > 0 (NaN = unused)")
            with np.errstate(invalid="ignore"):
                prev = np.full_like(a, np.nan)
                prev[:, 1:] = np.fmax.accumulate(a, axis=1)[:, :-1]
                check((is_set & (a < prev)).any(axis=1), f"{name}: levels must not descend")


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, out_score, out_grade, out_fault, out_ev):
    jump_z, direction, z_levels, size_levels, hold_s = P
    (grade, until, last_step, last_z, score, c_t, c_ldt, c_n, j_t, j_x, j_v, j_s, j_q, j_n, j_t0,
     j_e, j_pt, j_px, j_pd) = S
    JS = (j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd)
    out_fault[j] = 0  # a step is a movement; a spike is the stuck detector's fault
    if ok and np.isfinite(v):
        period = observe_period(i, t, c_t, c_ldt, c_n)
        scale = jump_scale(i, v, j_s, j_q)  # before this sample can move it
        dec, _, size, _, _ = jump_step(i, t, v, jump_z[i], period, JS)
        if dec == STEP:
            d = direction[i]
            worse = size if d == 1 else (-size if d == -1 else abs(size))
            z = worse / scale
            sized = False
            for u in range(4):
                if not np.isnan(size_levels[i, u]):
                    sized = True
            lvl = level_past(worse, size_levels, i) if sized else level_past(z, z_levels, i)
            if lvl > 0:
                last_step[i] = size
                last_z[i] = z
                s = level_score(worse, size_levels, i) if sized else level_score(z, z_levels, i)
                if lvl >= grade[i]:
                    grade[i] = lvl
                    score[i] = s
                until[i] = t + at_least(hold_s[i], 3.0, period)
        if grade[i] > 0 and t > until[i]:
            grade[i] = 0  # the new level has held: it is the normal one now
            score[i] = 0.0
    out_score[j] = score[i]
    out_grade[j] = grade[i]
    out_ev[j, 0] = last_step[i]
    out_ev[j, 1] = last_z[i]


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


class StepDetector(ChannelDetector):
    """A value that jumps to a new level and stays: an abrupt displacement, a sudden level change.

    Learned detection that needs no site threshold: each channel learns its own increment scale
    (how much it normally changes from one sample to the next beyond its trend, floored at the
    data's quantum; `detectors.jumps`), a sample that departs from the trend by `jump_z` scales
    is held, and the next sample decides: back on the old trend is a spike (a sensor fault, the
    stuck detector's verdict), near the new value is a step. A step is graded by its size in
    increment scales (blue from 10, yellow from 30 by default; orange and red only from
    `size_levels` a design gives in the value's units) and stays an alarm for `hold_s` (and 3
    sample periods); after that the new level is normal, so an earthquake offset is one event,
    not weeks of them. The velocity detectors take the step out of their series for the same
    reason. The decision costs one sample of delay: a day for daily GNSS solutions.

    evidence (`evidence_names`): "step" (the last step's departure from the trend, signed, in the
    value's units) and "z" (its size in increment scales).

    Parameters
    ----------
    params : StepParams
        One entry per channel; validated here.

    References
    ----------
    Offsets in GNSS position series from earthquakes and equipment changes (Gazeaux, J. et al.
    2013, Detecting offsets in GPS time series: first results from the detection of offsets
    evaluation project, J. Geophys. Res. Solid Earth 118, 2397-2407, doi:10.1002/jgrb.50152);
    robust scale after Hampel (1974), doi:10.1080/01621459.1974.10482962.

    Examples
    --------
    Daily GNSS east component with 1 mm of noise, an earthquake offset of -40 mm on day 50 and
    a one-day 30 mm glitch on day 80:

    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(0, 1.0, 120) - np.where(np.arange(120) >= 50, 40.0, 0.0)
    >>> x[80] += 30.0
    >>> out = StepDetector(StepParams.defaults(1)).run(np.arange(120) * 86400.0, x[:, None])
    >>> np.flatnonzero(np.diff(out.grade[:, 0]) != 0).tolist()  # raised day 51, cleared day 55
    [50, 54]
    >>> int(out.grade[51, 0]), round(float(out.evidence[51, 0, 0]))
    (2, -41)
    """

    name = "step"
    evidence_names = ("step", "z")

    def _state_spec(self) -> StateSpec:
        spec: StateSpec = {
            "grade": (np.int8, (), 0), "until": (np.float64, (), np.nan),
            "last_step": (np.float64, (), np.nan), "last_z": (np.float64, (), np.nan),
            "score": (np.float32, (), 0.0)}
        spec.update(cadence_spec())
        spec.update(jump_spec())
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = StepDetector(StepParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
