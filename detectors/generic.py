"""Generic anomaly detector for points without a physical rule: adaptive, daily-aware, one
alert per event."""

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
    check_shapes,
)

__all__ = ["GenericParams", "GenericDetector", "N_BINS"]

N_BINS = 24  # daily profile: one bin per hour of the local day
_DAY = 86400.0
_MAD_TO_SD = 1.2533  # mean absolute deviation of a normal distribution times this is its sd


@dataclass
class GenericParams:
    """Per-channel parameters (n channels).

    `tau_s`: time constant of the baseline level and scale. `daily`: learn a daily profile (24
    hourly bins of the local day, `tz_offset_s` east of UTC) with memory `profile_tau_s`.
    `warmup_s`: no events before this much time has been seen (the baseline calibrates, fast:
    running means until enough samples make the time constant the slower one). `min_scale`,
    `rel_scale`: floors of the scale, absolute and relative to the level (quantised or flat
    channels). The threshold calibrates itself: a sample is anomalous when its z reaches
    max(`z_min`, `z_mult` x the running `q` quantile of the channel's own z. An event starts after
    `raise_samples` consecutive anomalous samples and ends when none has come for `clear_s`
    seconds; during its first `max_event_s` seconds the baseline learns `event_slowdown` times
    slower, so the anomaly is not learnt as normal (and its end, the return to the old level, is
    not a second anomaly); after that a lasting change is accepted as the new normal.
    `grade_level`: the grade an event carries (1..4).
    """

    tau_s: np.ndarray  # float64[n]
    daily: np.ndarray  # bool[n]
    tz_offset_s: np.ndarray  # float64[n]
    profile_tau_s: np.ndarray  # float64[n]
    warmup_s: np.ndarray  # float64[n]
    min_scale: np.ndarray  # float64[n]
    rel_scale: np.ndarray  # float64[n]
    q: np.ndarray  # float64[n]
    z_mult: np.ndarray  # float64[n]
    z_min: np.ndarray  # float64[n]
    raise_samples: np.ndarray  # int32[n]
    clear_s: np.ndarray  # float64[n]
    event_slowdown: np.ndarray  # float64[n]
    max_event_s: np.ndarray  # float64[n]
    grade_level: np.ndarray  # int8[n]

    @classmethod
    def defaults(cls, n: int) -> GenericParams:
        """Baseline over 1 h, daily profile (China, UTC+8) over 7 days, warm-up 5 min (and 60
        samples: a minute of 1-second data is no baseline, nor are two days of daily data), scale floors
        1e-9 and 0.1 % of the level, z >= max(4, 1.5 x its 99th percentile), 3 samples to
        raise, 10 min quiet to end, baseline 1000x slower (all but frozen) in the first day of an
        event, events blue."""
        return cls(tau_s=np.full(n, 3600.0), daily=np.ones(n, np.bool_),
                   tz_offset_s=np.full(n, 8 * 3600.0), profile_tau_s=np.full(n, 7 * _DAY),
                   warmup_s=np.full(n, 300.0), min_scale=np.full(n, 1e-9),
                   rel_scale=np.full(n, 1e-3), q=np.full(n, 0.99), z_mult=np.full(n, 1.5),
                   z_min=np.full(n, 4.0), raise_samples=np.full(n, 3, np.int32),
                   clear_s=np.full(n, 600.0), event_slowdown=np.full(n, 1000.0),
                   max_event_s=np.full(n, _DAY),
                   grade_level=np.ones(n, np.int8))

    @property
    def n(self) -> int:
        return len(self.tau_s)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self)
        check_finite(self, ("tau_s", "profile_tau_s", "min_scale", "z_mult", "z_min"),
                     strict=True)
        check_finite(self, ("warmup_s", "rel_scale", "clear_s", "max_event_s"))
        check_finite(self, ("event_slowdown",), minimum=1.0)
        check(~np.isfinite(self.tz_offset_s), "tz_offset_s must be finite")
        q = np.asarray(self.q, np.float64)
        check(~((q > 0.5) & (q < 1.0)), "q must be in (0.5, 1)")
        check(np.asarray(self.raise_samples) < 1, "raise_samples must be >= 1")
        g = np.asarray(self.grade_level)
        check((g < 1) | (g > 4), "grade_level must be 1..4")


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, out_score, out_grade, out_fault, out_ev):
    (tau, daily, tz, prof_tau, warmup, min_scale, rel_scale, q, z_mult, z_min, raise_n,
     clear_s, slowdown, max_event, grade_level) = P
    (seen, t_first, t_last, mu, mad, prof, prof_n, qz, run_n, last_anom, in_event, event_t0,
     events, score, z_last, thr_last, pred_last, c_t, c_ldt, c_n) = S
    out_fault[j] = 0  # a generic anomaly is graded; sensor faults are the stuck detector's
    if ok and np.isfinite(v):
        # every time constant holds enough samples at this channel's own cadence
        period = observe_period(i, t, c_t, c_ldt, c_n)
        tau_i = at_least(tau[i], 10.0, period)
        warmup_i = at_least(warmup[i], 60.0, period)
        clear_i = at_least(clear_s[i], 3.0, period)
        max_event_i = at_least(max_event[i], 10.0, period)
        use_daily = daily[i] and (np.isnan(period) or period <= 3600.0)
        if seen[i] == 0:
            t_first[i] = t
            t_last[i] = t
            mu[i] = v
            qz[i] = z_min[i] / z_mult[i]
        seen[i] += 1
        dt = max(t - t_last[i], 0.0)
        t_last[i] = t
        b = 0
        seasonal = 0.0
        if use_daily:
            b = int(((t + tz[i]) % _DAY) / _DAY * N_BINS) % N_BINS
            if prof_n[i, b] > 0:
                seasonal = prof[i, b]
        pred = mu[i] + seasonal
        r = v - pred
        scale = max(_MAD_TO_SD * mad[i], min_scale[i], rel_scale[i] * abs(mu[i]))
        z = abs(r) / scale
        warm = t - t_first[i] >= warmup_i
        thr = max(z_min[i], z_mult[i] * qz[i])
        anomalous = warm and z >= thr
        if anomalous:
            run_n[i] += 1
            last_anom[i] = t
            if not in_event[i] and run_n[i] >= raise_n[i]:
                in_event[i] = True
                event_t0[i] = t
                events[i] += 1
        else:
            run_n[i] = 0
            if in_event[i] and t - last_anom[i] >= clear_i:
                in_event[i] = False
        # learning: running means at first (fast calibration), then the time constant; slowed
        # down inside an event or for an anomalous sample, so an anomaly is not learnt as normal
        a = max(1.0 - np.exp(-dt / tau_i), 1.0 / seen[i])
        if (in_event[i] and t - event_t0[i] < max_event_i) or (anomalous and not in_event[i]):
            a /= slowdown[i]
        mu[i] += a * (v - seasonal - mu[i])
        dev = abs(r)
        if warm:
            dev = min(dev, thr * scale)  # winsorised: the tail must not inflate the scale
        mad[i] += a * (dev - mad[i])
        if use_daily and not in_event[i]:
            a_p = max(1.0 - np.exp(-dt * N_BINS / prof_tau[i]), 1.0 / (prof_n[i, b] + 1.0))
            prof[i, b] += a_p * (v - mu[i] - prof[i, b])
            prof_n[i, b] += 1.0
        if seen[i] > 30 and not in_event[i]:
            # stochastic-approximation quantile of the channel's own z: rises by q * step on an
            # exceedance, falls by (1 - q) * step otherwise, so it settles where P(z > qz) = 1 - q
            step = 0.02 * max(qz[i], 0.1)
            qz[i] += step * (q[i] if z > qz[i] else -(1.0 - q[i]))
        # 0.5 (the blue decision) at the threshold, 0 while the baseline calibrates
        score[i] = min(1.0, 0.5 * z / thr) if warm else 0.0
        z_last[i] = z
        thr_last[i] = thr
        pred_last[i] = pred
    out_score[j] = score[i]
    out_grade[j] = grade_level[i] if in_event[i] else 0
    out_ev[j, 0] = z_last[i]
    out_ev[j, 1] = thr_last[i]
    out_ev[j, 2] = pred_last[i]
    out_ev[j, 3] = events[i]


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


class GenericDetector(ChannelDetector):
    """Anomalies on any series: adaptive baseline with a daily profile, a threshold that
    calibrates itself per channel, and one event per anomaly.

    Expected value = level (an exponentially weighted mean, time constant `tau_s`) + the daily
    profile's value for this hour of the local day (each hour-bin learnt with memory
    `profile_tau_s`), so a pump that runs every afternoon or a temperature's daily swing is
    normal. The residual is scaled by a running mean absolute deviation (as an sd, floored):
    z = |x - expected| / scale. Instead of a fixed z limit, each channel tracks the `q` quantile
    of its own z (a stochastic-approximation quantile: bounded state, no sample buffer) and calls
    a sample anomalous at max(`z_min`, `z_mult` x that quantile): heavy-tailed channels get a
    higher bar, quiet ones a lower one. Debounce and hysteresis: an event (grade `grade_level`)
    starts after `raise_samples` consecutive anomalous samples and lasts until `clear_s` seconds
    pass without one, so a long anomaly is one alert, not one per sample.

    A generic point has no standard behind its levels, so events carry one grade (blue by
    default) and the score says how strong: 0 while warming up, 0.5 at the threshold (the
    decision, as for every detector), 1 at twice it. Every time constant is in time and in
    samples: the baseline's at least 10 sample periods, the warm-up 60, the quiet time that ends
    an event 3, and the daily profile is learnt only from data at least hourly. fault is
    always 0 (stuck and implausible values are the stuck detector's verdicts).

    evidence (`evidence_names`): "z", "z_threshold", "expected" (the baseline's prediction) and
    "events" (events so far on this channel).

    Parameters
    ----------
    params : GenericParams
        One entry per channel; validated here.

    References
    ----------
    Robust residual scoring after Hampel (1974), doi:10.1080/01621459.1974.10482962; the
    streaming quantile after Robbins and Monro (1951), A stochastic approximation method, Ann.
    Math. Statist. 22(3), 400-407, doi:10.1214/aoms/1177729586; additive daily profile as in
    Holt-Winters (Winters 1960, Management Science 6(3), 324-342, doi:10.1287/mnsc.6.3.324).
    Tuned on SKAB valve1 (Katser and Kozitsin 2020); see benchmarks/skab.py.

    Examples
    --------
    A flow with a daily cycle, every 10 minutes for 12 days, and a 2-hour jump on day 10:

    >>> t = np.arange(0, 12 * 86400, 600.0)
    >>> rng = np.random.default_rng(0)
    >>> x = 50 + 10 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.5, t.size)
    >>> x[(t >= 10 * 86400) & (t < 10 * 86400 + 7200)] += 8.0
    >>> out = GenericDetector(GenericParams.defaults(1)).run(t, x[:, None])
    >>> starts = np.flatnonzero(np.diff(out.grade[:, 0].astype(int)) > 0) + 1
    >>> [round(float(t[k]) / 86400, 2) for k in starts], int(out.evidence[-1, 0, 3])
    ([10.01], 1)
    """

    name = "generic"
    evidence_names = ("z", "z_threshold", "expected", "events")

    def _state_spec(self) -> StateSpec:
        return {
            "seen": (np.int64, (), 0), "t_first": (np.float64, (), np.nan),
            "t_last": (np.float64, (), np.nan), "mu": (np.float64, (), 0.0),
            "mad": (np.float64, (), 0.0), "prof": (np.float64, (N_BINS,), 0.0),
            "prof_n": (np.float64, (N_BINS,), 0.0), "qz": (np.float64, (), 0.0),
            "run_n": (np.int32, (), 0), "last_anom": (np.float64, (), np.nan),
            "in_event": (np.bool_, (), False), "event_t0": (np.float64, (), np.nan),
            "events": (np.int64, (), 0),
            "score": (np.float32, (), 0.0), "z_last": (np.float64, (), np.nan),
            "thr_last": (np.float64, (), np.nan), "pred_last": (np.float64, (), np.nan),
            **cadence_spec(),
        }

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = GenericDetector(GenericParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
