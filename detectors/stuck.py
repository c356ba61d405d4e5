"""Stuck (flat-lined) sensors and implausible values: sensor faults, never safety alerts."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.base import Quality
from detectors.cadence import observe_period
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
from detectors.jumps import SPIKE, STEP, jump_step

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
    `min_stuck_s`: and for at least this long: what the quantity's physics allows (a pond level
    holds still for a day; a vibrating-wire frequency never does). `run_factor`, `mean_factor`:
    the longest flat run the channel has shown (forgotten with a 60-day half-life) times
    `run_factor`, and its mean flat run times `mean_factor`, are floors too, so a channel whose
    value normally holds for hours (a level gauge that reads in centimetres, a logger that reads
    a piezometer in whole digits) is judged by its own habits; NaN disables either.
    `tolerance`: changes up to this (absolute) count as unchanged (a flat line with a flicker of
    the last digit is still flat); 0 = only an identical value. `plausible_min` /
    `plausible_max`: outside is fault 3 (out_of_range); NaN = no limit. `max_rate`: a change
    faster than this (units per second) between consecutive samples is physically implausible:
    fault 1 on that sample; NaN = no limit. `jump_z`: a sample that departs from the trend by this
    many increment scales and is back on it at the next sample is a spike: fault 1 on both
    (`detectors.jumps`; one that stays is a step, the step detector's safety event); inf = no
    spike check (rain: a wet day among dry ones is no glitch).
    """

    period_s: np.ndarray  # float64[n]
    periods: np.ndarray  # float64[n]
    min_samples: np.ndarray  # int32[n]
    min_stuck_s: np.ndarray  # float64[n]
    run_factor: np.ndarray  # float64[n]
    mean_factor: np.ndarray  # float64[n]
    tolerance: np.ndarray  # float64[n]
    plausible_min: np.ndarray  # float64[n]
    plausible_max: np.ndarray  # float64[n]
    max_rate: np.ndarray  # float64[n]
    jump_z: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> StuckParams:
        """Device period 60 s, stuck after 6 periods and 6 samples, no physical minimum, 3x the
        longest and 10x the mean flat run seen; exact equality, no limits; spikes at 10
        increment scales."""
        return cls(period_s=np.full(n, 60.0), periods=np.full(n, 6.0),
                   min_samples=np.full(n, 6, np.int32), min_stuck_s=np.zeros(n),
                   run_factor=np.full(n, 3.0), mean_factor=np.full(n, 10.0),
                   tolerance=np.zeros(n), plausible_min=np.full(n, np.nan),
                   plausible_max=np.full(n, np.nan), max_rate=np.full(n, np.nan),
                   jump_z=np.full(n, 10.0))

    @property
    def n(self) -> int:
        return len(self.period_s)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self)
        check_finite(self, ("period_s",), strict=True)
        check_jump_z(self)
        check_finite(self, ("periods",), minimum=1.0, strict=True)
        check_finite(self, ("tolerance",))
        m = np.asarray(self.min_stuck_s, np.float64)
        check(np.isnan(m) | (m < 0), "min_stuck_s must be >= 0 seconds (inf: never stuck)")
        for name in ("run_factor", "mean_factor"):
            f = np.asarray(getattr(self, name), np.float64)
            check(~np.isnan(f) & ~(np.isfinite(f) & (f >= 1)), f"{name} must be >= 1 or NaN")
        check(np.asarray(self.min_samples) < 2, "min_samples must be >= 2")
        lo, hi = np.asarray(self.plausible_min), np.asarray(self.plausible_max)
        check(np.isinf(lo) | np.isinf(hi) | (lo > hi),
              "plausible range must be a finite min <= max (NaN = no limit)")
        r = np.asarray(self.max_rate, np.float64)
        check(~np.isnan(r) & ~(np.isfinite(r) & (r > 0)), "max_rate must be > 0 or NaN")


_RUN_HALF_LIFE = 60 * 86400.0  # the longest flat run seen is forgotten slowly
_PRIOR_RUNS = 20  # flat runs seen before the channel's own habits are trusted
_PRIOR_S = 86400.0  # until then a value may hold still for a day


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, out_score, out_grade, out_fault, out_ev):
    (period, periods, min_n, min_stuck, run_factor, mean_factor, tol, pmin, pmax, max_rate,
     jump_z) = P
    (ref, since, n_same, last_x, last_t, run_mean, run_env, run_t, flagged, run_n, c_t, c_ldt, c_n,
     j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd) = S
    JS = (j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd)
    out_fault[j] = 0
    if ok and not np.isnan(v):
        if (np.isinf(v) or (not np.isnan(pmin[i]) and v < pmin[i])
                or (not np.isnan(pmax[i]) and v > pmax[i])):
            out_fault[j] = _OUT_OF_RANGE  # judged alone: it neither extends nor breaks a run
        else:
            sp = observe_period(i, t, c_t, c_ldt, c_n)
            dec, cand, _, _, _ = jump_step(i, t, v, jump_z[i], sp, JS)
            if dec == SPIKE or (cand and dec != STEP):
                # a jump is suspect until the next sample decides; a spike confirmed by its
                # successor makes that one suspect too, so the engine sees a fault, not a blip;
                # a jump right after a step is the same movement going on (a ramp over two
                # samples), not a second glitch
                out_fault[j] = _SUSPECT
            if (not np.isnan(max_rate[i]) and not np.isnan(last_t[i]) and t > last_t[i]
                    and abs(v - last_x[i]) > max_rate[i] * (t - last_t[i])):
                out_fault[j] = _SUSPECT
            if not cand:
                _flat_run(i, t, v, P, S)
                if n_same[i] >= min_n[i] and t - since[i] >= _stuck_after(i, P, S):
                    out_fault[j] = _SUSPECT
                    flagged[i] = True
    out_score[j] = 0.0  # a sensor fault is not a step toward red
    out_grade[j] = 0
    out_ev[j, 0] = t - since[i] if n_same[i] > 0 else np.nan
    out_ev[j, 1] = n_same[i]
    out_ev[j, 2] = _stuck_after(i, P, S)


@numba.njit(cache=True, nogil=True, inline="always")
def _flat_run(i, t, v, P, S):
    """Extend or end channel i's flat run; an ended run that was not stuck teaches the longest
    and the mean normal run."""
    tol = P[6]
    ref, since, n_same, last_x, last_t, run_mean, run_env, run_t, flagged, run_n = S[:10]
    if n_same[i] == 0 or abs(v - ref[i]) > tol[i]:
        if n_same[i] > 0 and not flagged[i]:
            held = last_t[i] - since[i]
            decay = 0.5 ** (max(t - run_t[i], 0.0) / _RUN_HALF_LIFE) if np.isfinite(run_t[i]) \
                else 0.0
            run_env[i] = max(run_env[i] * decay if np.isfinite(run_env[i]) else 0.0, held)
            run_t[i] = t
            w = max(0.02, 1.0 / (run_n[i] + 1.0))
            run_mean[i] = held if run_n[i] == 0 else run_mean[i] + w * (held - run_mean[i])
            if run_n[i] < (1 << 30):
                run_n[i] += 1
        ref[i] = v  # compared with the run's first value, so a slow creep is a change
        since[i] = t
        n_same[i] = 1
        flagged[i] = False
    elif n_same[i] < (1 << 30):
        n_same[i] += 1
    last_x[i] = v
    last_t[i] = t


@numba.njit(cache=True, nogil=True, inline="always")
def _stuck_after(i, P, S):
    """Seconds a value must hold still to be stuck: the device periods, the quantity's physical
    minimum, and the channel's own longest and mean normal runs times their factors."""
    period, periods, _, min_stuck, run_factor, mean_factor = P[:6]
    run_mean, run_env, run_n = S[5], S[6], S[9]
    after = max(periods[i] * period[i], min_stuck[i])
    if run_n[i] < _PRIOR_RUNS and not (np.isnan(run_factor[i]) and np.isnan(mean_factor[i])):
        after = max(after, _PRIOR_S)  # its habits are not known yet: a day is no flat line
    if not np.isnan(run_factor[i]) and np.isfinite(run_env[i]):
        after = max(after, run_factor[i] * run_env[i])
    if not np.isnan(mean_factor[i]) and np.isfinite(run_mean[i]):
        after = max(after, mean_factor[i] * run_mean[i])
    return after


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


class StuckDetector(ChannelDetector):
    """Flat-lined sensors, values outside the plausible range and impossible jumps.

    A value that stays within `tolerance` of the first value of its run for `periods` device
    update periods, at least `min_samples` reads and at least `min_stuck_s` seconds is stuck:
    fault 1 (suspect) on every sample from then until the value changes. The device period
    matters: a GNSS station publishes one solution an hour, so reading the same number six times
    in that hour is normal, not stuck. The quantity's physics matters: a pond's level gauge that
    reads in centimetres shows the same number for a day when the pond is still, so water levels
    get a physical minimum of two days (detectors.registry), and the channel's own longest and
    mean flat runs, times `run_factor` and `mean_factor`, are floors too (until it has shown 20
    runs, a day is). A value outside [plausible_min,
    plausible_max] (or infinite) is fault 3 (out_of_range); a jump faster than `max_rate` is
    fault 1; a spike (a jump of `jump_z` increment scales that the next sample does not follow)
    is fault 1 on the spike and on the sample that proves it. These are sensor-fault verdicts
    (GB 39496-2020 §5.5.3: self-diagnosis of sensors), never grades: score and grade are always
    0. Invalid samples (NaN, valid False) change nothing: a silent sensor is acquisition's stale
    verdict.

    evidence (`evidence_names`): "unchanged_s" (seconds since the value last changed),
    "same_samples" (reads in the current run), "stuck_after_s" (how long it must hold still to
    be stuck, as now judged).

    Parameters
    ----------
    params : StuckParams
        One entry per channel; validated here.

    References
    ----------
    GB 39496-2020 §5.5.3 (online monitoring shall self-diagnose sensor faults); GB 51108-2015
    §10.0.1 (faults repaired within 7 days); docs/requirements.md R9 (a fault is not a safety
    alarm).

    Examples
    --------
    A GNSS station (one solution an hour) polled every 10 minutes, which then freezes:

    >>> p = StuckParams.defaults(1)
    >>> p.period_s[0], p.periods[0] = 3600.0, 3.0
    >>> p.run_factor[0] = p.mean_factor[0] = np.nan  # judged by the device period alone
    >>> det = StuckDetector(p)
    >>> hourly = np.repeat(np.arange(6.0), 6)  # a new solution every hour, read 6 times
    >>> x = np.concatenate([hourly, np.full(30, 5.0)])  # then the same solution for 5 hours
    >>> out = det.run(600.0 * np.arange(x.size), x[:, None])
    >>> int(out.fault[:36].max()), int(np.argmax(out.fault[:, 0])), int(out.grade.max())
    (0, 48, 0)

    By its own habits: a level read in centimetres every 5 minutes changes every few hours for
    ten days; then it holds still for 20 hours (a still pond: no fault), and from day 15 for
    good: stuck once it has held about three times its longest normal run:

    >>> t = np.arange(0, 20 * 86400, 300.0)
    >>> x = 338.5 + 0.01 * np.floor(t / (3.7 * 3600) % 2)  # toggles every 3.7 h
    >>> x[(t >= 10 * 86400) & (t < 10 * 86400 + 20 * 3600)] = 338.50
    >>> x[t >= 15 * 86400] = 338.51
    >>> out = StuckDetector(StuckParams.defaults(1)).run(t, x[:, None])
    >>> int(out.fault[t < 15 * 86400].max()), round(float(t[np.argmax(out.fault[:, 0])]) / 86400, 1)
    (0, 18.0)
    """

    name = "stuck"
    evidence_names = ("unchanged_s", "same_samples", "stuck_after_s")

    def _state_spec(self) -> StateSpec:
        spec: StateSpec = {
            "ref": (np.float64, (), np.nan), "since": (np.float64, (), np.nan),
            "n_same": (np.int32, (), 0), "last_x": (np.float64, (), np.nan),
            "last_t": (np.float64, (), np.nan),
            "run_mean": (np.float64, (), np.nan),  # the mean normal flat run (s)
            "run_env": (np.float64, (), np.nan),  # the longest normal flat run (s)
            "run_t": (np.float64, (), np.nan), "flagged": (np.bool_, (), False),
            "run_n": (np.int32, (), 0)}
        spec.update(cadence_spec())
        spec.update(jump_spec())
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = StuckDetector(StuckParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
