"""Improved tangent angle of a displacement series (Xu Qiang 2009; docs/requirements.md R5)."""

from __future__ import annotations

import math
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
    check_finite,
    check_jump_z,
    check_levels,
    check_shapes,
    hysteresis_spec,
    jump_spec,
)
from detectors.grading import debounce, level_held, level_past, level_score
from detectors.jumps import RAMP, STEP, WARM, jump_scale, jump_step

__all__ = ["TangentAngleParams", "TangentAngleDetector", "tangent_angle"]


def tangent_angle(v: float, v_ref: float) -> float:
    """alpha = degrees(atan(v / v_ref)): 45 for steady creep, towards 90 as v grows.

    >>> [round(tangent_angle(r, 1.0), 1) for r in (1.0, 5.67, 11.43)]
    [45.0, 80.0, 85.0]
    """
    return math.degrees(math.atan(v / v_ref))


@dataclass
class TangentAngleParams(Debounce):
    """Per-channel parameters (n channels).

    `direction`: +1 the displacement grows when the slope moves (the usual cumulative series),
    -1 it falls, 2 either (the size of the velocity: a GNSS axis). `bucket_s`: the least bucket
    width (s; a bucket is never shorter than the sample period); the current velocity v_now is
    the Theil-Sen slope of the bucket means over the detector's `n_buckets` (the smoothing: 8 x
    6 h = 48 h by default, 8 days for daily solutions), from `min_buckets` buckets on. `per_s`:
    velocity unit (86400: per day). `v_ref`: reference velocity of steady creep (units per
    `per_s`); NaN = learn it as the least-squares velocity over the first `learn_s` seconds (and
    at least 30 sample periods) of data, never below its own standard error nor `v_floor`.
    No level is raised while v_now exceeds v_ref by less than `v_floor` or by less than `noise_z`
    standard errors of v_now (from the scatter of the bucket means about their line: a floor
    that adapts to the sensor's noise), nor while the displacement since the first sample is
    below `disp_floor`. `angles` [n, 4]: blue, yellow, orange, red angles (deg);
    `angle_restore` [n, 4]: release below these. `jump_z`: spikes are left out and steps taken
    out of the series (`detectors.jumps`). Debounce: `raise_samples`, `raise_hold` (s: how long
    the angle must be sustained), `clear_samples`, `clear_hold`, `red_immediate`.
    """

    direction: np.ndarray  # int8[n]
    bucket_s: np.ndarray  # float64[n]
    min_buckets: np.ndarray  # int32[n]
    per_s: np.ndarray  # float64[n]
    v_ref: np.ndarray  # float64[n]
    learn_s: np.ndarray  # float64[n]
    v_floor: np.ndarray  # float64[n]
    noise_z: np.ndarray  # float64[n]
    disp_floor: np.ndarray  # float64[n]
    angles: np.ndarray  # float64[n, 4]
    angle_restore: np.ndarray  # float64[n, 4]
    jump_z: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> TangentAngleParams:
        """6-hour buckets (4 to start), mm per day, v_ref learned over 7 days (and 30 samples),
        floors 0.02 mm/d and 5 mm, 3 standard errors; angles 50 (45 + a 5-degree margin) / 65 /
        80 / 85 with 2-degree restore bands; blue and yellow sustained for 12 h (and 3 samples),
        red at once; jumps at 10 increment scales."""
        deb = cls.debounce_defaults(n)
        deb["raise_hold"][:] = 12 * 3600.0
        return cls(direction=np.ones(n, np.int8), bucket_s=np.full(n, 6 * 3600.0),
                   min_buckets=np.full(n, 4, np.int32), per_s=np.full(n, 86400.0),
                   v_ref=np.full(n, np.nan), learn_s=np.full(n, 7 * 86400.0),
                   v_floor=np.full(n, 0.02), noise_z=np.full(n, 3.0), disp_floor=np.full(n, 5.0),
                   angles=np.tile([50.0, 65.0, 80.0, 85.0], (n, 1)),
                   angle_restore=np.tile([48.0, 63.0, 78.0, 83.0], (n, 1)),
                   jump_z=np.full(n, 10.0), **deb)

    @property
    def n(self) -> int:
        return len(self.direction)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self, ("angles", "angle_restore"))
        check(~np.isin(self.direction, (1, -1, 2)), "direction must be 1, -1 or 2")
        check_finite(self, ("bucket_s", "per_s"), strict=True)
        check_jump_z(self)
        check_finite(self, ("learn_s", "v_floor", "noise_z", "disp_floor"))
        check(np.asarray(self.min_buckets) < 2, "min_buckets must be >= 2")
        vr = np.asarray(self.v_ref, np.float64)
        check(~np.isnan(vr) & ~(np.isfinite(vr) & (vr > 0)), "v_ref must be > 0 or NaN (learn)")
        check(np.isnan(vr) & (np.asarray(self.v_floor) <= 0),
              "a learned v_ref needs v_floor > 0")
        check_levels(self.angles, self.angle_restore, "angles")
        a = np.asarray(self.angles, np.float64)
        check((~np.isnan(a) & ((a <= 45.0) | (a >= 90.0))).any(axis=1),
              "angles must lie between 45 (steady creep) and 90 degrees")
        self.check_debounce()


@numba.njit(cache=True, nogil=True, inline="always")
def _signed(d, vel):
    return vel if d == 1 else (-vel if d == -1 else abs(vel))


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, tm, xm, nm, pairs, out_score, out_grade, out_fault, out_ev):
    (rn, rh, cn, ch, red, direction, bucket_s, min_b, per_s, v_ref, learn_s, v_floor, noise_z,
     disp_floor, angles, angle_restore, jump_z) = P
    (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl, b_id, b_n, b_st, b_sx, last_id, b_w,
     c_t, c_ldt, c_n, j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd, offset,
     t0, x0, l_n, l_st, l_sx, l_stt, l_stx, l_sxx, vref_learned, vnow, angle, score, res_sd,
     v_used, ts_old, ts_n, ts_q) = S
    JS = (j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd)
    out_fault[j] = 0
    used = False
    newest_only = False  # only the newest bucket changed (`theil_sen_window`)
    d = direction[i]
    if ok and np.isfinite(v):
        period = observe_period(i, t, c_t, c_ldt, c_n)
        w_was = b_w[i]
        w = bucket_width(i, bucket_s[i], period, b_id, b_n, b_st, b_sx, last_id, b_w)
        dec, cand, size, pt, px = jump_step(i, t, v, jump_z[i], period, JS)
        if dec == STEP:
            offset[i] += size  # the step detector reports a step; the angle judges the creep
        held = False
        if dec in (STEP, RAMP):  # the held sample is data (a ramp's as it is)
            held = _learn_and_add(i, pt, px - offset[i], w, period, P, S)
            used = held
        now = False
        if not cand:
            now = _learn_and_add(i, t, v - offset[i], w, period, P, S)
            used = now or used
        newest_only = only_newest_changed(i, w, w_was, held, pt, now, t, last_id)
    if used:
        vr = v_ref[i] if np.isfinite(v_ref[i]) else vref_learned[i]
        k = bucket_means(i, b_w[i], b_id, b_n, b_st, b_sx, last_id, tm, xm, nm)
        if k >= min_b[i]:
            q = last_id[i]
            slope = theil_sen_window(i, tm, xm, k, pairs, newest_only, q,
                                     b_n[i, q % b_id.shape[1]], ts_old, ts_n, ts_q)
            vnow[i] = _signed(d, slope * per_s[i])
            if not np.isfinite(v_ref[i]) and not np.isnan(vr) and j_n[i] >= WARM:
                # a learned steady velocity is at least what the noise lets one tell from zero:
                # below that (a station that does not creep) every wobble would be a steep angle
                per_bucket = 0.0
                for u in range(k):
                    per_bucket += nm[u]
                sd_mean = jump_scale(i, v, j_s, j_q) / np.sqrt(2.0 * per_bucket / k)
                se_v = sd_mean / (b_w[i] * np.sqrt(k * (k * k - 1.0) / 12.0)) * per_s[i]
                vr = max(vr, noise_z[i] * se_v)
            if not np.isnan(vr):
                v_used[i] = vr
                angle[i] = np.degrees(np.arctan(vnow[i] / vr))
                xl = xm[k - 1] if k > 0 else x0[i]
                moved = _signed(d, xl - x0[i])
                # an excess velocity under the noise floor, or a displacement under its floor,
                # makes the angle a ratio of noises: it raises nothing
                floor = max(v_floor[i], noise_z[i] * slope_se(tm, xm, k, slope) * per_s[i])
                if np.isfinite(res_sd[i]) and not np.isfinite(v_ref[i]):
                    # the learning period's own scatter about its line (coloured GNSS noise,
                    # seasonal wobble, not only white noise) as a velocity over this window:
                    # an excess velocity it could explain is no acceleration
                    spread = b_w[i] * np.sqrt(k * (k * k - 1.0) / 12.0)
                    floor = max(floor, noise_z[i] * res_sd[i] / spread * per_s[i])
                excess = vnow[i] - vr
                quiet = excess < floor or moved < disp_floor[i]
                y = 0.0 if quiet else angle[i]
                score[i] = level_score(y, angles, i) if not quiet else 0.0
                debounce(i, t, level_past(y, angles, i), level_held(y, angle_restore, i),
                         (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl), (rn, rh, cn, ch, red))
    out_ev[j, 1] = v_used[i]
    out_ev[j, 0] = angle[i]
    out_ev[j, 2] = vnow[i]
    g = grade[i]
    out_ev[j, 3] = angles[i, g - 1] if g > 0 else angles[i, 0]  # the level an event quotes
    out_score[j] = score[i]
    out_grade[j] = grade[i]


@numba.njit(cache=True, nogil=True, inline="always")
def _learn_and_add(i, t, v, w, period, P, S):
    """Learn v_ref from the de-stepped sample (during the learning period) and add it to its
    bucket; False when it is too old for the window."""
    direction, _, _, per_s, _, learn_s, v_floor = P[5:12]  # after the debounce block
    b_id, b_n, b_st, b_sx, last_id = S[7:12]
    t0, x0, l_n, l_st, l_sx, l_stt, l_stx, l_sxx, vref_learned = S[28:37]
    res_sd = S[40]
    if np.isnan(t0[i]):
        t0[i] = t
        x0[i] = v
    if np.isnan(vref_learned[i]):
        # learning: running least-squares sums over the quiet period (bounded state)
        if t - t0[i] < at_least(learn_s[i], 30.0, period):
            dt = t - t0[i]
            dx = v - x0[i]
            l_n[i] += 1.0
            l_st[i] += dt
            l_sx[i] += dx
            l_stt[i] += dt * dt
            l_stx[i] += dt * dx
            l_sxx[i] += dx * dx
        else:
            vref_learned[i], res_sd[i] = _learned_v_ref(l_n[i], l_st[i], l_sx[i], l_stt[i],
                                                        l_stx[i], l_sxx[i], direction[i],
                                                        per_s[i], v_floor[i])
    return bucket_add(i, t, v, w, b_id, b_n, b_st, b_sx, last_id)


@numba.njit(cache=True, nogil=True, inline="always")
def _learned_v_ref(n, st, sx, stt, stx, sxx, d, per_s, v_floor):
    """(v_ref, residual sd): the least-squares velocity of the learning period in the worse
    direction, floored at its own standard error (a v_ref that noise cannot tell from zero makes
    every wobble a steep angle) and at v_floor; and the scatter of the samples about that line."""
    den = n * stt - st * st
    if n < 3 or den <= 0:
        return v_floor, np.nan
    slope = (n * stx - st * sx) / den
    c0 = (sx - slope * st) / n
    sse = sxx - c0 * sx - slope * stx  # residual sum of squares of the fit
    se = np.sqrt(max(sse, 0.0) / (n - 2) / (stt - st * st / n)) if stt > st * st / n else 0.0
    vel = _signed(d, slope * per_s)
    return max(vel, se * per_s, v_floor), np.sqrt(max(sse, 0.0) / (n - 2))


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


class TangentAngleDetector(ChannelDetector):
    """Improved tangent angle of cumulative displacement, graded by the deformation stage.

    Xu Qiang's improved tangent angle turns the displacement-time curve into a dimensionless one
    by dividing displacement by the velocity of steady (uniform) creep: the angle of the current
    velocity is alpha = atan(v_now / v_ref), 45 degrees for steady creep. Xu's stages: about 45
    uniform deformation, 45 to 80 initial acceleration, 80 to 85 medium acceleration, 85 and above
    imminent failure. Steady creep is the normal state of a dam, so it raises nothing: blue needs
    the angle a margin above 45 (default 50), sustained (`raise_hold`), with the excess of v_now
    over v_ref and the cumulative displacement above their noise floors; then yellow (default 65) up to 80, orange
    80 to 85, red from 85 (at once).

    v_now is the Theil-Sen slope of bucket means over the trailing window (the smoothing; GNSS
    solutions are noisy at the millimetre level); buckets are never shorter than the sample
    period, so the window holds `n_buckets` samples at any cadence. v_ref is configured, or
    learned as the least-squares velocity of the first `learn_s` seconds and 30 samples (7 days
    of hourly solutions, a month of daily ones), floored at its own standard error, at `v_floor`
    and at `noise_z` standard errors of v_now from the sensor's own noise (a station that does
    not creep measurably has no meaningful steady velocity: without this floor every wobble
    would be a steep angle); nothing is graded before it is known. An excess of v_now over v_ref
    that the learning period's own scatter about its line could explain (coloured GNSS noise,
    seasonal wobble: `noise_z` standard errors of a velocity over the window) raises nothing.
    A spike is left out of the series and a
    step (an earthquake, a slip) taken out of it (`detectors.jumps`; the step detector reports
    it), so the angle judges the creep. fault is always 0: the angle judges the slope, not the
    sensor. score: 0 while quiet, 0.5 at the blue angle, 1 at red (`grading.score_at`).

    evidence (`evidence_names`): "angle_deg" (alpha, the last one computed; NaN before v_ref and
    the window are there), "v_ref" (the one the angle used, floors included) and "v_now" (units
    per `per_s`, in the worse direction), "level_deg": the angle of the current grade's level (of
    blue when none), the level an event quotes.

    Parameters
    ----------
    params : TangentAngleParams
        One entry per channel; validated here.
    n_buckets : int
        Buckets in the velocity window (>= 2), the same for all channels.

    References
    ----------
    Xu Qiang, Zeng Yuping, Qian Jiangpeng, Wang Chengjun, He Chaoyang (2009). Study on a improved
    tangential angle and the corresponding landslide pre-warning criteria. Geological Bulletin of
    China 28(4), 501-505 (许强 等, 改进的切线角及对应的滑坡预警判据, 地质通报).
    docs/requirements.md R5.

    Examples
    --------
    Creep at 1 mm/d (configured v_ref) that accelerates from day 10 by 0.5 mm/d per day; hourly
    GNSS solutions; the grade at the start of days 8 to 23:

    >>> p = TangentAngleParams.defaults(1)
    >>> p.v_ref[0] = 1.0
    >>> det = TangentAngleDetector(p)
    >>> ch, ok = np.array([0]), np.array([True])
    >>> hours = np.arange(0, 24 * 24)
    >>> x = np.cumsum(np.clip(1 + (hours / 24 - 10) / 2, 1, 8) / 24)
    >>> outs = [det.update(ch, 3600.0 * h, np.array([x[h]]), ok) for h in hours]
    >>> [int(outs[24 * d].grade[0]) for d in range(8, 24)]
    [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3]
    >>> [round(float(e), 1) for e in outs[-1].evidence[0]]  # angle, v_ref, v_now, level
    [82.4, 1.0, 7.5, 80.0]
    """

    name = "tangent_angle"
    evidence_names = ("angle_deg", "v_ref", "v_now", "level_deg")
    derived = tuple(older_pairs_spec(2))

    def __init__(self, params: TangentAngleParams, n_buckets: int = 8):
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
        for key in ("t0", "x0"):
            spec[key] = (np.float64, (), np.nan)
        for key in ("l_n", "l_st", "l_sx", "l_stt", "l_stx", "l_sxx"):  # learning sums
            spec[key] = (np.float64, (), 0.0)
        for key in ("v_ref_learned", "v_now", "angle"):
            spec[key] = (np.float64, (), np.nan)
        spec["score"] = (np.float32, (), 0.0)
        spec["res_sd"] = (np.float64, (), np.nan)  # scatter about the learning period's line
        spec["v_used"] = (np.float64, (), np.nan)  # the v_ref of the last angle
        spec.update(older_pairs_spec(self.n_buckets))  # last: the kernels unpack S in order
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = TangentAngleDetector(TangentAngleParams.defaults(1), n_buckets=2)
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
