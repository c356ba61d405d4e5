"""Rate of change over a time window, as a robust slope with graded limits (docs/requirements.md R5)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.buckets import (
    BUCKET_STATE,
    bucket_add,
    bucket_means,
    bucket_width,
    older_pairs_spec,
    only_newest_changed,
    slope_se,
    theil_sen_window,
)
from detectors.cadence import at_least, observe_period
from detectors.channels import (
    ChannelDetector,
    Debounce,
    StateSpec,
    cadence_spec,
    check,
    check_factors,
    check_finite,
    check_jump_z,
    check_levels,
    check_shapes,
    hysteresis_spec,
    jump_spec,
)
from detectors.grading import debounce, level_held, level_past, level_score
from detectors.jumps import RAMP, STEP, jump_step

__all__ = ["RISE", "FALL", "EITHER", "RateParams", "RateDetector"]

RISE, FALL, EITHER = 1, -1, 2


@dataclass
class RateParams(Debounce):
    """Per-channel parameters (n channels).

    `direction`: which change is worse: +1 rise (water level), -1 fall (phreatic burial depth:
    the phreatic line rises when the depth falls), 2 either (the size of the rate: a GNSS axis).
    `bucket_s`: the least width of a time bucket (s); a bucket is never shorter than the sample
    period, so the window (`n_buckets` of them, a detector argument) holds that many samples at
    any cadence. `per_s`: the rate's time unit in seconds (3600 per hour, 86400 per day).
    `min_buckets` (>= 2): non-empty buckets needed before a slope is trusted.
    `limits` [n, 4]: blue, yellow, orange, red rates (units per `per_s`, in the worse direction,
    so positive for a phreatic rise too; NaN = unused); `restore` [n, 4]: a level is released
    when the rate is back below this. Where no limit is set the detector learns its own:
    `learn_s` (seconds, and at least 30 sample periods) of history set the envelope of the rate
    (the highest rate seen in the worse direction, forgotten with half-life `env_half_life_s`);
    a rate `learned` [n, 4] times the envelope (blue, yellow; NaN for orange and red: only
    configured limits reach them) and above it by `noise_z` standard errors of the slope raises.
    `jump_z`: a sample departing from the trend by this many increment scales is a spike (left
    out) or a step (taken out of the series), `detectors.jumps`. Debounce as in the threshold
    detector: `raise_samples`, `raise_hold` (s), `clear_samples`, `clear_hold` (s),
    `red_immediate`.
    """

    direction: np.ndarray  # int8[n]
    bucket_s: np.ndarray  # float64[n]
    per_s: np.ndarray  # float64[n]
    min_buckets: np.ndarray  # int32[n]
    limits: np.ndarray  # float64[n, 4]
    restore: np.ndarray  # float64[n, 4]
    learn_s: np.ndarray  # float64[n]
    learned: np.ndarray  # float64[n, 4]
    env_half_life_s: np.ndarray  # float64[n]
    noise_z: np.ndarray  # float64[n]
    jump_z: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> RateParams:
        """Rise is worse, 2-hour buckets, rate per day, 3 buckets to start, no limits; learned
        levels after 14 days: blue at 3x and yellow at 6x the highest rate seen, half-life a
        year (a season seen before is remembered), 3 standard errors above it; jumps at 10 increment scales."""
        return cls(direction=np.ones(n, np.int8), bucket_s=np.full(n, 7200.0),
                   per_s=np.full(n, 86400.0), min_buckets=np.full(n, 3, np.int32),
                   limits=np.full((n, 4), np.nan), restore=np.full((n, 4), np.nan),
                   learn_s=np.full(n, 14 * 86400.0),
                   learned=np.tile([3.0, 6.0, np.nan, np.nan], (n, 1)),
                   env_half_life_s=np.full(n, 365 * 86400.0), noise_z=np.full(n, 3.0),
                   jump_z=np.full(n, 10.0), **cls.debounce_defaults(n))

    @property
    def n(self) -> int:
        return len(self.direction)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self, ("limits", "restore", "learned"))
        check(~np.isin(self.direction, (RISE, FALL, EITHER)), "direction must be 1, -1 or 2")
        check_finite(self, ("bucket_s", "per_s", "env_half_life_s"), strict=True)
        check_jump_z(self)
        check_finite(self, ("learn_s", "noise_z"))
        check(np.asarray(self.min_buckets) < 2, "min_buckets must be >= 2")
        check_levels(self.limits, self.restore, "limits")
        check_factors(self.learned, "learned")
        self.check_debounce()


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, tm, xm, nm, pairs, out_score, out_grade, out_fault, out_ev):
    (rn, rh, cn, ch, red, direction, bucket_s, per_s, min_b, limits, restore, learn_s, learned,
     half_life, noise_z, jump_z) = P
    (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl, b_id, b_n, b_st, b_sx, last_id, b_w,
     c_t, c_ldt, c_n, j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd, offset, t0, env, env_t,
     se_typ, lv, lr, rate, score, ts_old, ts_n, ts_q) = S
    JS = (j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd)
    out_fault[j] = 0  # a rate says nothing about the sensor's health
    used = False
    newest_only = False  # only the newest bucket changed (`theil_sen_window`)
    if ok and np.isfinite(v):
        period = observe_period(i, t, c_t, c_ldt, c_n)
        w_was = b_w[i]
        w = bucket_width(i, bucket_s[i], period, b_id, b_n, b_st, b_sx, last_id, b_w)
        if np.isnan(t0[i]):
            t0[i] = t
        dec, cand, size, pt, px = jump_step(i, t, v, jump_z[i], period, JS)
        if dec == STEP:
            offset[i] += size  # a step is the step detector's event, not a rate for a window
        held = False
        if dec in (STEP, RAMP):  # the held sample is data (a ramp's as it is)
            held = bucket_add(i, pt, px - offset[i], w, b_id, b_n, b_st, b_sx, last_id)
            used = held
        now = False
        if not cand:
            now = bucket_add(i, t, v - offset[i], w, b_id, b_n, b_st, b_sx, last_id)
            used = now or used
        newest_only = only_newest_changed(i, w, w_was, held, pt, now, t, last_id)
    if used:
        k = bucket_means(i, b_w[i], b_id, b_n, b_st, b_sx, last_id, tm, xm, nm)
        if k >= min_b[i]:
            q = last_id[i]
            slope = theil_sen_window(i, tm, xm, k, pairs, newest_only, q,
                                     b_n[i, q % b_id.shape[1]], ts_old, ts_n, ts_q)
            r = slope * per_s[i]
            rate[i] = r
            d = direction[i]
            y = r if d == 1 else (-r if d == -1 else abs(r))
            se = slope_se(tm, xm, k, slope) * per_s[i]
            configured = False
            for u in range(4):
                if not np.isnan(limits[i, u]):
                    configured = True
            if configured:
                score[i] = level_score(y, limits, i)
                debounce(i, t, level_past(y, limits, i), level_held(y, restore, i),
                         (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl), (rn, rh, cn, ch, red))
            else:
                period = np.exp(c_ldt[i]) if c_n[i] > 0 else np.nan
                y = _learned(i, t, y, se, at_least(learn_s[i], 30.0, period), t - t0[i],
                             learned, half_life, noise_z, grade, env, env_t, se_typ, lv, lr)
                score[i] = level_score(y, lv, i)
                debounce(i, t, level_past(y, lv, i), level_held(y, lr, i),
                         (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl), (rn, rh, cn, ch, red))
        out_ev[j, 1] = k
        out_ev[j, 2] = tm[k - 1] - tm[0] if k > 0 else 0.0
    else:
        out_ev[j, 1] = np.nan
        out_ev[j, 2] = np.nan
    out_ev[j, 0] = rate[i]
    out_ev[j, 3] = env[i] if np.isfinite(lv[i, 0]) else np.nan
    # the limit an event quotes: the current grade's level (blue's when none), configured or
    # learned, and the rate's time unit
    configured = not np.isnan(limits[i, 0]) or not np.isnan(limits[i, 1]) or \
        not np.isnan(limits[i, 2]) or not np.isnan(limits[i, 3])
    g = grade[i]
    k = g - 1 if g > 0 else 0
    out_ev[j, 4] = limits[i, k] if configured else lv[i, k]
    out_ev[j, 5] = per_s[i]
    out_score[j] = score[i]
    out_grade[j] = grade[i]


@numba.njit(cache=True, nogil=True, inline="always")
def _learned(i, t, y, se, learn, age, learned, half_life, noise_z, grade, env, env_t, se_typ,
             lv, lr):
    """Learned levels: the envelope of the worse-direction rate (a maximum that halves every
    `half_life` seconds) times `learned`, with a noise floor; returns the rate to grade (0 while
    learning, and while the rate exceeds the envelope by less than `noise_z` standard errors).
    After the first `learn` seconds the envelope rises at most by dt / learn of itself per dt: a
    seasonal swing is followed, an acceleration is not learnt as normal before it is graded."""
    if np.isfinite(se):
        se_typ[i] = se if np.isnan(se_typ[i]) else se_typ[i] + 0.05 * (se - se_typ[i])
    dt = max(t - env_t[i], 0.0) if np.isfinite(env_t[i]) else 0.0
    env_t[i] = t
    if np.isnan(env[i]):
        env[i] = y
    env[i] *= 0.5 ** (dt / half_life[i])
    judging = age >= learn
    if grade[i] == 0 and y > env[i]:  # the alarm itself is never learnt as normal
        env[i] = min(y, env[i] + abs(env[i]) * dt / learn) if judging else y
    if not judging:
        return 0.0
    base = max(env[i], noise_z[i] * se_typ[i] if np.isfinite(se_typ[i]) else 0.0, 1e-12)
    for u in range(4):
        lv[i, u] = learned[i, u] * base
        lr[i, u] = 0.8 * lv[i, u]
    if not np.isfinite(se) or y - env[i] < noise_z[i] * se:
        return 0.0
    return y


@numba.njit(cache=True, nogil=True, _nrt=False)
def _row(idx, t, x, valid, P, S, tm, xm, nm, pairs, out_score, out_grade, out_fault, out_ev):
    """One time step for the channels idx, in order: the one compiled copy of `_step` (inlined
    here), called once per time step by both kernels. Compiled without numba's reference counting
    (`_nrt=False`: it allocates nothing, and every array it sees belongs to its caller for the
    call), which otherwise increments and decrements every array of P and S for each
    channel-sample and cost several times the rule itself (docs/contracts.md#detector-protocol)."""
    for j in range(idx.shape[0]):
        _step(idx[j], j, t, x[j], valid[j], P, S, tm, xm, nm, pairs, out_score, out_grade,
              out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _update_kernel(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """The live path: one sample at time t for the channels idx (in order)."""
    nb = S[7].shape[1]
    tm, xm, nm = np.empty(nb), np.empty(nb), np.empty(nb)
    pairs = np.empty(nb * (nb - 1) // 2 + 1)
    _row(idx, t, x, valid, P, S, tm, xm, nm, pairs, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _block_kernel(t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """Replay: row r is `_update_kernel` over every channel at t[r] (the same `_row`)."""
    nb = S[7].shape[1]
    tm, xm, nm = np.empty(nb), np.empty(nb), np.empty(nb)
    pairs = np.empty(nb * (nb - 1) // 2 + 1)
    cols = np.arange(x.shape[1])
    for r in range(x.shape[0]):
        _row(cols, t[r], x[r], valid[r], P, S, tm, xm, nm, pairs, out_score[r], out_grade[r],
             out_fault[r], out_ev[r])


class RateDetector(ChannelDetector):
    """Graded rate of change over a time window: water-level rise, displacement velocity,
    phreatic rise.

    Each channel's window (`n_buckets` buckets of at least `bucket_s` seconds and at least one
    sample period, e.g. 12 x 2 h = 24 h for 10-minute data, 12 days for daily data) is kept as
    bucket counts and sums, never as raw samples. The rate is the Theil-Sen slope (the median of
    the pairwise slopes) of the bucket means, in units per `per_s`: a bad hour moves one bucket
    mean and hardly the median; a spike is left out and a step taken out of the series
    (`detectors.jumps`: the step detector reports it, once). With fewer than `min_buckets`
    non-empty buckets there is no rate, and nothing changes (a dead sensor never clears an alarm).

    The rate, taken in the worse direction, is graded against `limits` with `restore` levels and
    the debounce of `detectors.grading.debounce` (the threshold detector's rule): an oscillating
    rate raises once. A point without configured limits (a new site rarely has them) is graded
    against its own history instead: after `learn_s`, a rate three times the highest seen is blue
    and six times it yellow, when it is also above that envelope by `noise_z` standard errors of the
    slope; the envelope learns only while the point is quiet, and forgets slowly (half-life
    `env_half_life_s`), so a seasonal swing seen before is no alarm. Learned levels never reach
    orange or red: only a design institute's limits do. fault is always 0 (good): a rate judges
    the structure, not the sensor. score: 0.5 at the blue decision (`grading.score_at`).

    evidence (`evidence_names`): "rate" (units per `per_s`, signed; the last one computed),
    "buckets" (non-empty buckets in the window) and "span_s" (seconds between the oldest and the
    newest bucket mean), both NaN for a sample that was not used (invalid, NaN, too old, or a
    jump held for the next sample); "envelope": the learned highest rate (NaN with configured
    limits or while learning); "limit": the rate limit of the current grade (of blue when none),
    configured or learned; "per_s": the rate's time unit in seconds.

    Parameters
    ----------
    params : RateParams
        One entry per channel; validated here.
    n_buckets : int
        Buckets per window (>= 2), the same for all channels.

    References
    ----------
    GB 51108-2015 §8.3.3 (displacement and displacement-rate warning values per item);
    docs/requirements.md R5 (velocity from the cumulative series over a window of at least one
    GNSS session; open-pit references 10 mm/d, 5 mm/h). Theil, H. (1950), Proc. KNAW 53; Sen,
    P. K. (1968), JASA 63, 1379-1389, doi:10.1080/01621459.1968.10480934.

    Examples
    --------
    A water level rising 0.5 m a day, sampled every 10 min, limits 0.2 / 0.4 / 0.6 / 0.8 m/d:

    >>> p = RateParams.defaults(1)
    >>> p.bucket_s[0] = 3600.0
    >>> p.limits[0] = [0.2, 0.4, 0.6, 0.8]
    >>> p.restore[0] = [0.15, 0.35, 0.55, 0.75]
    >>> det = RateDetector(p, n_buckets=6)
    >>> ch, ok = np.array([0]), np.array([True])
    >>> outs = [det.update(ch, 600.0 * k, np.array([1250.0 + 0.5 * k / 144]), ok)
    ...         for k in range(60)]
    >>> [int(o.grade[0]) for o in outs[::10]]
    [0, 0, 2, 2, 2, 2]
    >>> round(float(outs[-1].evidence[0, 0]), 3), round(float(outs[-1].score[0]), 3)
    (0.5, 0.75)

    Without limits: daily readings of a level that wobbles by 2 cm for two months, then rises
    10 cm a day; the grade at days 60 to 70 (three samples to raise; blue, then yellow):

    >>> det = RateDetector(RateParams.defaults(1))
    >>> days = np.arange(75.0)
    >>> x = 100 + 0.02 * np.sin(days) + np.where(days > 60, 0.1 * (days - 60), 0.0)
    >>> out = det.run(days * 86400, x[:, None])
    >>> int(out.grade[:61].max()), out.grade[60:71, 0].tolist()
    (0, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    """

    name = "rate"
    evidence_names = ("rate", "buckets", "span_s", "envelope", "limit", "per_s")
    derived = tuple(older_pairs_spec(2))

    def __init__(self, params: RateParams, n_buckets: int = 12):
        if int(n_buckets) < 2:
            raise ValueError(f"n_buckets must be >= 2, got {n_buckets}")
        self.n_buckets = int(n_buckets)
        super().__init__(params)

    def _state_spec(self) -> StateSpec:
        spec = hysteresis_spec()
        for key, (dtype, per_bucket, init) in BUCKET_STATE.items():
            spec[key] = (dtype, (self.n_buckets,) if per_bucket else (), init)
        spec.update(cadence_spec())
        spec.update(jump_spec())
        spec["offset"] = (np.float64, (), 0.0)  # the steps taken out of the series
        spec["t0"] = (np.float64, (), np.nan)
        spec["env"] = (np.float64, (), np.nan)  # learned envelope of the worse-direction rate
        spec["env_t"] = (np.float64, (), np.nan)
        spec["se_typ"] = (np.float64, (), np.nan)  # typical standard error of the rate
        spec["lv"] = (np.float64, (4,), np.nan)  # learned levels and their restore levels
        spec["lr"] = (np.float64, (4,), np.nan)
        spec["rate"] = (np.float64, (), np.nan)
        spec["score"] = (np.float32, (), 0.0)
        spec.update(older_pairs_spec(self.n_buckets))  # last: the kernels unpack S in order
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = RateDetector(RateParams.defaults(1), n_buckets=2)
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
