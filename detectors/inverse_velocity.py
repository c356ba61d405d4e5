"""Inverse-velocity forecast of the failure time (Fukuzono 1985; docs/requirements.md R5)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.buckets import (
    BUCKET_STATE,
    NO_BUCKET,
    bucket_add,
    bucket_means,
    bucket_width,
    ls_fit,
    only_newest_changed,
)
from detectors.cadence import observe_period
from detectors.channels import (
    ChannelDetector,
    Debounce,
    StateSpec,
    cadence_spec,
    check,
    check_finite,
    check_jump_z,
    check_levels,
    check_shapes,
    hysteresis_spec,
    jump_spec,
    kernel_arrays,
)
from detectors.grading import debounce, level_held, level_past, level_score
from detectors.jumps import RAMP, STEP, WARM, jump_scale, jump_step

__all__ = ["InverseVelocityParams", "InverseVelocityDetector"]


@dataclass
class InverseVelocityParams(Debounce):
    """Per-channel parameters (n channels).

    `direction`: +1 the displacement grows (the usual cumulative series), -1 it falls, 2 either.
    `bucket_s`: least bucket width (s; never shorter than the sample period); the detector keeps
    `n_buckets` of them (the trailing window: 7 days of 6-hour buckets, 28 days of daily ones).
    `vel_span` (>= 1): a velocity is the least-squares slope of vel_span + 1 consecutive bucket
    means, placed at their mean time. `per_s`: velocity unit of the evidence (86400: per day).
    `jump_z`: spikes are left out and steps taken out of the series (`detectors.jumps`).
    `v_floor`: velocities below this, or below 3 standard errors of a velocity from the
    sensor's own noise, (units per `per_s`) are left out of the fit (1/v of a
    velocity near zero is noise). Publication needs `min_points` (>= 5) velocities, R^2 >=
    `min_r2`, a falling 1/v line, and acceleration established: the newest velocity at least
    `accel_ratio` times the oldest, both as measured and on the fitted line. `lead` [n, 4]: blue, yellow, orange,
    red when the forecast failure is at most this many seconds away (descending, NaN = unused);
    `lead_restore` [n, 4]: released when the lead is back above this. Debounce: `raise_samples`,
    `raise_hold`, `clear_samples`, `clear_hold`, `red_immediate`.
    """

    direction: np.ndarray  # int8[n]
    bucket_s: np.ndarray  # float64[n]
    vel_span: np.ndarray  # int32[n]
    per_s: np.ndarray  # float64[n]
    v_floor: np.ndarray  # float64[n]
    min_points: np.ndarray  # int32[n]
    min_r2: np.ndarray  # float64[n]
    accel_ratio: np.ndarray  # float64[n]
    lead: np.ndarray  # float64[n, 4]
    lead_restore: np.ndarray  # float64[n, 4]
    jump_z: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> InverseVelocityParams:
        """6-hour buckets, velocities over 24 h (vel_span 4), mm per day, floor 0.05 mm/d, 5
        points, R^2 0.8, acceleration x2; blue / yellow / orange / red at 14 / 7 / 3 / 1 days
        of lead (a MineWatch choice: no standard fixes them), released 10 % further out."""
        day = 86400.0
        lead = np.array([14.0, 7.0, 3.0, 1.0]) * day
        return cls(direction=np.ones(n, np.int8), bucket_s=np.full(n, 6 * 3600.0),
                   vel_span=np.full(n, 4, np.int32), per_s=np.full(n, day),
                   v_floor=np.full(n, 0.05), min_points=np.full(n, 5, np.int32),
                   min_r2=np.full(n, 0.8), accel_ratio=np.full(n, 2.0),
                   lead=np.tile(lead, (n, 1)), lead_restore=np.tile(1.1 * lead, (n, 1)),
                   jump_z=np.full(n, 10.0), **cls.debounce_defaults(n))

    @property
    def n(self) -> int:
        return len(self.direction)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self, ("lead", "lead_restore"))
        check(~np.isin(self.direction, (1, -1, 2)), "direction must be 1, -1 or 2")
        check_finite(self, ("bucket_s", "per_s", "v_floor"), strict=True)
        check_jump_z(self)
        check_finite(self, ("accel_ratio",), minimum=1.0)
        check(np.asarray(self.vel_span) < 1, "vel_span must be >= 1")
        check(np.asarray(self.min_points) < 5, "min_points must be >= 5")
        r2 = np.asarray(self.min_r2, np.float64)
        check(~((r2 >= 0) & (r2 <= 1)), "min_r2 must be in [0, 1]")
        # lead times: less is worse, so the negated levels must ascend like any other level set
        check_levels(-np.asarray(self.lead, np.float64), -np.asarray(self.lead_restore, np.float64),
                     "lead")
        self.check_debounce()


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, tm, xm, nm, tv, iv, out_score, out_grade, out_fault, out_ev):
    (rn, rh, cn, ch, red, direction, bucket_s, vel_span, per_s, v_floor, min_pts, min_r2, accel,
     neg_lead, neg_rest, jump_z) = P
    (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl, b_id, b_n, b_st, b_sx, last_id, b_w,
     c_t, c_ldt, c_n, j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd, offset,
     t_f, r2_s, npts, v_now, score, t_f_sd, published, rv_slope, rv_sum_t, rv_q, rv_k) = S
    JS = (j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd)
    out_fault[j] = 0
    used = False
    newest_only = False  # only the newest bucket changed: the older runs' fits stand
    if ok and np.isfinite(v):
        period = observe_period(i, t, c_t, c_ldt, c_n)
        w_was = b_w[i]
        w = bucket_width(i, bucket_s[i], period, b_id, b_n, b_st, b_sx, last_id, b_w)
        dec, cand, size, pt, px = jump_step(i, t, v, jump_z[i], period, JS)
        if dec == STEP:
            offset[i] += size  # the step detector reports a step; 1/v judges the creep
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
        w = b_w[i]
        k = bucket_means(i, w, b_id, b_n, b_st, b_sx, last_id, tm, xm, nm)
        # a run of buckets that ends before the newest one has the fit it had at the last
        # sample while the newest bucket fills (the window and its older buckets unchanged): kept
        # from the bucket's second sample on, as the Theil-Sen slopes are (`theil_sen_window`)
        q = last_id[i]
        kept = newest_only and rv_q[i] == q and rv_k[i] == k
        keep = not kept and newest_only and b_n[i, q % b_id.shape[1]] >= 2
        d = direction[i]
        L = vel_span[i]
        m = 0
        v_now[i] = np.nan
        # velocities whose size noise could explain are left out of the fit (their inverse is
        # noise): the floor is v_floor or 3 standard errors of a velocity over L + 1 bucket
        # means, from the sensor's own increment scale (not from the scatter about a line, which
        # an acceleration inflates)
        floor = v_floor[i]
        if k > 0 and j_n[i] >= WARM:
            per_bucket = 0.0
            for u in range(k):
                per_bucket += nm[u]
            sd_mean = jump_scale(i, v, j_s, j_q) / np.sqrt(2.0 * per_bucket / k)
            spread = np.sqrt((L + 1.0) * ((L + 1.0) ** 2 - 1.0) / 12.0)
            floor = max(floor, 3.0 * sd_mean / (w * spread) * per_s[i])
        for e in range(L, k):  # one velocity per run of L + 1 bucket means
            if kept and e < k - 1:
                slope = rv_slope[i, e]
                mt = rv_sum_t[i, e]
            else:
                _, slope, _ = ls_fit(tm, xm, e - L, L + 1)
                mt = 0.0
                for u in range(e - L, e + 1):
                    mt += tm[u]
                if keep and e < k - 1:
                    rv_slope[i, e] = slope
                    rv_sum_t[i, e] = mt
            vel = slope * per_s[i]
            vel = vel if d == 1 else (-vel if d == -1 else abs(vel))
            v_now[i] = vel
            if vel >= floor:
                tv[m] = mt / (L + 1) / per_s[i]
                iv[m] = 1.0 / vel
                m += 1
        if keep:
            rv_q[i], rv_k[i] = q, k
        elif not kept:
            rv_q[i] = NO_BUCKET
        npts[i] = m
        t_f[i] = np.nan
        t_f_sd[i] = np.nan
        r2_s[i] = np.nan
        was = published[i]
        published[i] = False
        if m >= 2:
            c0, c1, r2 = ls_fit(tv, iv, 0, m)  # 1/v = a - b t, t in units of per_s
            r2_s[i] = r2
            first = c0 + c1 * tv[0]
            last = c0 + c1 * tv[m - 1]
            # acceleration established: on the fitted line and in the measured velocities
            # (neighbouring velocities share buckets, so a fit alone can trend on noise)
            accelerating = (c1 < 0 and (last <= 0 or first >= accel[i] * last)
                            and iv[0] >= accel[i] * iv[m - 1])
            # once published, a forecast stands while R^2 stays within 0.1 of the bar: a fit
            # hovering at 0.8 must not raise and clear the alert every few samples
            bar = min_r2[i] - (0.1 if was else 0.0)
            published[i] = m >= min_pts[i] and r2 >= bar and accelerating
            if published[i]:
                origin = (last_id[i] - b_id.shape[1] + 1) * w  # tm counts from here
                t_f[i] = origin + (c0 / -c1) * per_s[i]
                t_f_sd[i] = _intercept_sd(tv, iv, m, c0, c1) * per_s[i]
        # lead time: less is worse, so grade its negative; no forecast is an infinite lead
        y = -np.inf if np.isnan(t_f[i]) else t - t_f[i]
        score[i] = level_score(y, neg_lead, i)
        debounce(i, t, level_past(y, neg_lead, i), level_held(y, neg_rest, i),
                 (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl), (rn, rh, cn, ch, red))
    out_ev[j, 0] = t_f[i] - t
    out_ev[j, 1] = r2_s[i]
    out_ev[j, 2] = npts[i]
    out_ev[j, 3] = v_now[i]
    out_ev[j, 4] = t_f_sd[i]
    g = grade[i]
    out_ev[j, 5] = -neg_lead[i, g - 1] if g > 0 else -neg_lead[i, 0]  # the lead of this level
    out_score[j] = score[i]
    out_grade[j] = grade[i]


@numba.njit(cache=True, nogil=True, inline="always")
def _intercept_sd(tv, iv, m, c0, c1):
    """Standard error of the line's zero crossing t_f = -c0 / c1 (the inverse prediction of a
    least-squares line: s / |c1| * sqrt(1/m + (t_f - mean t)^2 / Stt)), in the units of tv."""
    if m < 3 or c1 == 0.0:
        return np.nan
    mt = 0.0
    for u in range(m):
        mt += tv[u]
    mt /= m
    stt = 0.0
    sse = 0.0
    for u in range(m):
        stt += (tv[u] - mt) ** 2
        r = iv[u] - (c0 + c1 * tv[u])
        sse += r * r
    if stt <= 0.0:
        return np.nan
    s = np.sqrt(sse / (m - 2))
    tf = -c0 / c1
    return s / abs(c1) * np.sqrt(1.0 / m + (tf - mt) ** 2 / stt)


@numba.njit(cache=True, nogil=True, _nrt=False)
def _row(idx, t, x, valid, P, S, tm, xm, nm, tv, iv, out_score, out_grade, out_fault, out_ev):
    """One time step for the channels idx, in order: the one compiled copy of `_step` (inlined
    here), called once per time step by both kernels. Compiled without numba's reference counting
    (`_nrt=False`: it allocates nothing, and every array it sees belongs to its caller for the
    call), which otherwise increments and decrements every array of P and S for each
    channel-sample and cost several times the rule itself (docs/contracts.md#detector-protocol)."""
    for j in range(idx.shape[0]):
        _step(idx[j], j, t, x[j], valid[j], P, S, tm, xm, nm, tv, iv, out_score, out_grade,
              out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _update_kernel(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """The live path: one sample at time t for the channels idx (in order)."""
    nb = S[7].shape[1]
    tm, xm, nm, tv, iv = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
    _row(idx, t, x, valid, P, S, tm, xm, nm, tv, iv, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _block_kernel(t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """Replay: row r is `_update_kernel` over every channel at t[r] (the same `_row`)."""
    nb = S[7].shape[1]
    tm, xm, nm, tv, iv = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
    cols = np.arange(x.shape[1])
    for r in range(x.shape[0]):
        _row(cols, t[r], x[r], valid[r], P, S, tm, xm, nm, tv, iv, out_score[r], out_grade[r],
             out_fault[r], out_ev[r])


class InverseVelocityDetector(ChannelDetector):
    """Forecast of the time of failure from the inverse velocity of cumulative displacement.

    Fukuzono found that before a slope fails its inverse velocity falls about linearly with time,
    1/v = a - b t, so the line reaches zero at the failure time t_f = a / b. The detector keeps
    bucket means of the cumulative displacement over a trailing window (`n_buckets` buckets),
    derives velocities from them (least squares over vel_span + 1 buckets: the raw GNSS series
    is far too noisy to difference sample by sample), fits the line to 1/v of those above the
    velocity noise floor, and publishes t_f only once acceleration is established and the fit
    is good (at least `min_points` points, R^2 >= `min_r2`; docs/requirements.md R5: 5 and 0.8);
    a published forecast stands while R^2 stays above `min_r2` - 0.1.

    The lead time t_f - t is graded against `lead` (14 / 7 / 3 / 1 days by default) with
    hysteresis; when no forecast is published the lead is infinite, so a grade is released by
    the usual debounce. fault is always 0: a forecast judges the slope, not the sensor.

    evidence (`evidence_names`): "lead_s" = t_f - t in seconds (the forecast failure time is
    t + lead_s; kept as float64 in the state array `t_f`; NaN when none is published), "r2" of the
    fit, "points" in it, "v_now" the newest velocity (units per `per_s`), "lead_sd_s" the
    forecast's standard error (s; from the scatter of 1/v about its line), "level_lead_s" the lead
    of the current grade's level (of blue when none), the limit an event quotes.

    Parameters
    ----------
    params : InverseVelocityParams
        One entry per channel; validated here.
    n_buckets : int
        Buckets in the trailing window (> vel_span + 5), the same for all channels.

    References
    ----------
    Fukuzono, T. (1985). A new method for predicting the failure time of a slope. Proc. 4th
    International Conference and Field Workshop on Landslides, Tokyo, 145-150. Voight, B. (1988).
    A method for prediction of volcanic eruptions. Nature 332, 125-130, doi:10.1038/332125a0.

    Examples
    --------
    Velocity v = 1 / (A (t_f - t)) with t_f at day 20 and 2 mm/d at day 0, observed until day 18
    (hourly, noise-free here; the tests add GNSS noise):

    >>> det = InverseVelocityDetector(InverseVelocityParams.defaults(1))
    >>> days = np.arange(0, 18 * 24) / 24
    >>> x = -40.0 * np.log(1 - days / 20)  # displacement (mm) = -(1 / A) ln(1 - t / t_f)
    >>> out = det.run(days * 86400.0, x[:, None])
    >>> lead_s, r2, points, v_now, lead_sd_s, level_lead_s = out.evidence[-1, 0].tolist()
    >>> round(18 + lead_s / 86400, 2), round(r2, 3), int(points), int(out.grade[-1, 0])
    (20.01, 1.0, 24, 3)
    """

    name = "inverse_velocity"
    evidence_names = ("lead_s", "r2", "points", "v_now", "lead_sd_s", "level_lead_s")
    derived = ("rv_slope", "rv_sum_t", "rv_q", "rv_k")

    def __init__(self, params: InverseVelocityParams, n_buckets: int = 28):
        self.n_buckets = int(n_buckets)
        if self.n_buckets < int(np.max(params.vel_span, initial=1)) + 6:
            raise ValueError(f"n_buckets {n_buckets} leaves fewer than 5 velocities for a fit")
        super().__init__(params)

    def _kernel_params(self, params: InverseVelocityParams) -> tuple[np.ndarray, ...]:
        return kernel_arrays(params, negated=("lead", "lead_restore"))  # graded as minus the lead

    def _state_spec(self) -> StateSpec:
        spec = hysteresis_spec()
        for key, (dtype, per_bucket, init) in BUCKET_STATE.items():
            spec[key] = (dtype, (self.n_buckets,) if per_bucket else (), init)
        spec.update(cadence_spec())
        spec.update(jump_spec())
        spec["offset"] = (np.float64, (), 0.0)  # the steps taken out of the series
        spec["t_f"] = (np.float64, (), np.nan)
        spec["r2"] = (np.float64, (), np.nan)
        spec["points"] = (np.float64, (), 0.0)
        spec["v_now"] = (np.float64, (), np.nan)
        spec["score"] = (np.float32, (), 0.0)
        spec["t_f_sd"] = (np.float64, (), np.nan)  # standard error of the forecast (s)
        spec["published"] = (np.bool_, (), False)  # a forecast stands (R^2 hysteresis)
        # last (the kernels unpack S in order), derived: each run's fitted slope and summed
        # bucket times while only the newest bucket fills, for newest bucket rv_q and k = rv_k
        spec["rv_slope"] = (np.float64, (self.n_buckets,), np.nan)
        spec["rv_sum_t"] = (np.float64, (self.n_buckets,), np.nan)
        spec["rv_q"] = (np.int64, (), NO_BUCKET)
        spec["rv_k"] = (np.int32, (), 0)
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = InverseVelocityDetector(InverseVelocityParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
