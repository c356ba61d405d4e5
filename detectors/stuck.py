"""Stuck (flat-lined) sensors and implausible values: sensor faults, never safety alerts."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.base import Quality
from detectors.channels import ChannelDetector, StateSpec, check, check_finite, check_shapes

__all__ = ["StuckParams", "StuckDetector"]

_SUSPECT = int(Quality.SUSPECT)
_OUT_OF_RANGE = int(Quality.OUT_OF_RANGE)


@dataclass
class StuckParams:
    """Per-channel parameters (n channels).

    `period_s`: the device's own update period (a GNSS solution arrives hourly, a vibrating-wire
    logger may measure every 10 min): the gateway may poll faster and read the same value again,
    so a value unchanged within this period is never stuck. `periods`: a value unchanged for this
    many device periods is stuck (> 1). `min_samples`: and read at least this many times.
    `tolerance`: changes up to this (absolute) count as unchanged (a flat line with a flicker of
    the last digit is still flat); 0 = only an identical value. `plausible_min` /
    `plausible_max`: outside is fault 3 (out_of_range); NaN = no limit. `max_rate`: a change
    faster than this (units per second) between consecutive samples is physically implausible:
    fault 1 on that sample; NaN = no limit.
    """

    period_s: np.ndarray  # float64[n]
    periods: np.ndarray  # float64[n]
    min_samples: np.ndarray  # int32[n]
    tolerance: np.ndarray  # float64[n]
    plausible_min: np.ndarray  # float64[n]
    plausible_max: np.ndarray  # float64[n]
    max_rate: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> StuckParams:
        """Device period 60 s, stuck after 6 periods and 6 samples, exact equality, no limits."""
        return cls(period_s=np.full(n, 60.0), periods=np.full(n, 6.0),
                   min_samples=np.full(n, 6, np.int32), tolerance=np.zeros(n),
                   plausible_min=np.full(n, np.nan), plausible_max=np.full(n, np.nan),
                   max_rate=np.full(n, np.nan))

    @property
    def n(self) -> int:
        return len(self.period_s)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self)
        check_finite(self, ("period_s",), strict=True)
        check_finite(self, ("periods",), minimum=1.0, strict=True)
        check_finite(self, ("tolerance",))
        check(np.asarray(self.min_samples) < 2, "min_samples must be >= 2")
        lo, hi = np.asarray(self.plausible_min), np.asarray(self.plausible_max)
        check(np.isinf(lo) | np.isinf(hi) | (lo > hi),
              "plausible range must be a finite min <= max (NaN = no limit)")
        r = np.asarray(self.max_rate, np.float64)
        check(~np.isnan(r) & ~(np.isfinite(r) & (r > 0)), "max_rate must be > 0 or NaN")


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, out_score, out_grade, out_fault, out_ev):
    period, periods, min_n, tol, pmin, pmax, max_rate = P
    ref, since, n_same, last_x, last_t = S
    out_fault[j] = 0
    if ok and not np.isnan(v):
        if (np.isinf(v) or (not np.isnan(pmin[i]) and v < pmin[i])
                or (not np.isnan(pmax[i]) and v > pmax[i])):
            out_fault[j] = _OUT_OF_RANGE  # judged alone: it neither extends nor breaks a run
        else:
            if (not np.isnan(max_rate[i]) and not np.isnan(last_t[i]) and t > last_t[i]
                    and abs(v - last_x[i]) > max_rate[i] * (t - last_t[i])):
                out_fault[j] = _SUSPECT
            if n_same[i] == 0 or abs(v - ref[i]) > tol[i]:
                ref[i] = v  # compared with the run's first value, so a slow creep is a change
                since[i] = t
                n_same[i] = 1
            elif n_same[i] < (1 << 30):
                n_same[i] += 1
            last_x[i] = v
            last_t[i] = t
            if n_same[i] >= min_n[i] and t - since[i] >= periods[i] * period[i]:
                out_fault[j] = _SUSPECT
    out_score[j] = 0.0  # a sensor fault is not a step toward red
    out_grade[j] = 0
    out_ev[j, 0] = t - since[i] if n_same[i] > 0 else np.nan
    out_ev[j, 1] = n_same[i]


@numba.njit(cache=True, nogil=True)
def _update_kernel(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    for j in range(idx.shape[0]):
        _step(idx[j], j, t, x[j], valid[j], P, S, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _block_kernel(t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            _step(c, c, t[r], x[r, c], valid[r, c], P, S, out_score[r], out_grade[r],
                  out_fault[r], out_ev[r])


class StuckDetector(ChannelDetector):
    """Flat-lined sensors, values outside the plausible range and impossible jumps.

    A value that stays within `tolerance` of the first value of its run for `periods` device
    update periods and at least `min_samples` reads is stuck: fault 1 (suspect) on every sample
    from then until the value changes. The device period matters: a GNSS station publishes one
    solution an hour, so reading the same number six times in that hour is normal, not stuck.
    A value outside [plausible_min, plausible_max] (or infinite) is fault 3 (out_of_range); a
    jump faster than `max_rate` is fault 1. These are sensor-fault verdicts (GB 39496-2020
    §5.5.3: self-diagnosis of sensors), never grades: score and grade are always 0. Invalid
    samples (NaN, valid False) change nothing: a silent sensor is acquisition's stale verdict.

    evidence (`evidence_names`): "unchanged_s" (seconds since the value last changed),
    "same_samples" (reads in the current run).

    Parameters
    ----------
    params : StuckParams
        One entry per channel; validated here.

    References
    ----------
    GB 39496-2020 §5.5.3 (online monitoring shall self-diagnose sensor faults); GB 51108-2015
    §10.0.1 (faults repaired within 7 days); domain.md R9 (a fault is not a safety alarm).

    Examples
    --------
    A GNSS station (one solution an hour) polled every 10 minutes, which then freezes:

    >>> p = StuckParams.defaults(1)
    >>> p.period_s[0], p.periods[0] = 3600.0, 3.0
    >>> det = StuckDetector(p)
    >>> hourly = np.repeat(np.arange(6.0), 6)  # a new solution every hour, read 6 times
    >>> x = np.concatenate([hourly, np.full(30, 5.0)])  # then the same solution for 5 hours
    >>> out = det.run(600.0 * np.arange(x.size), x[:, None])
    >>> int(out.fault[:36].max()), int(np.argmax(out.fault[:, 0])), int(out.grade.max())
    (0, 48, 0)
    """

    name = "stuck"
    evidence_names = ("unchanged_s", "same_samples")
    params_type = StuckParams

    def _state_spec(self) -> StateSpec:
        return {"ref": (np.float64, (), np.nan), "since": (np.float64, (), np.nan),
                "n_same": (np.int32, (), 0), "last_x": (np.float64, (), np.nan),
                "last_t": (np.float64, (), np.nan)}

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = StuckDetector(StuckParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
