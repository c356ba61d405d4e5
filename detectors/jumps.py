"""Spikes and steps: is a sample that jumps away from its trend a glitch or a new level?

One sample cannot tell: a GNSS solution 30 mm off may be a bad solution (the next one is back on
the trend: a spike, a sensor fault) or an earthquake or a slip (the next one stays: a step, a
real movement), or the start of a much faster movement (the next one moves on as far again: a
ramp, an acceleration that must stay in the series). So a jump is held as a candidate and
decided by the sample after it, comparing how far that sample lies from the old trend and from
the candidate's level.

A jump is an increment that departs from the expected one (the running velocity times the time
step) by more than `jump_z` times the channel's own increment scale: a running mean absolute
deviation of the detrended increments (as a standard deviation), floored at the data's quantum
(the smallest change the channel has shown: a level gauge that reads in centimetres cannot jump
by less than a few of them) and at 1.5 times the largest departure the channel has shown in normal
operation (forgotten with a 30-day half-life: a piezometer read in whole logger digits moves by
one digit at a time, a large change for its scale that it makes every few hours). The scale,
the envelope and the velocity learn only from accepted samples, and a longer gap than usual
allows a larger change (the noise of the longer step, and the velocity's error carried across). Nothing is judged before `WARM` increments and
a day (`WARM_S`) have set them.

Used by the stuck detector (a confirmed spike is a sensor fault), the step detector (a confirmed
step is a safety event) and the velocity detectors (rate, tangent angle, inverse velocity), which
leave a spike out and take a step out of their series, so an earthquake step is reported once, as
a step, instead of as a velocity for weeks. Inlined into their kernels (see `detectors.grading`
about the numba cache after editing this file).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["JUMP_STATE", "WARM", "WARM_S", "NONE", "SPIKE", "STEP", "RAMP", "jump_step",
           "jump_scale"]

# name -> (dtype, initial value), per channel
JUMP_STATE = {
    "j_t": (np.float64, np.nan),  # the reference: the last accepted sample
    "j_x": (np.float64, np.nan),
    "j_v": (np.float64, 0.0),  # running velocity (units per second)
    "j_s": (np.float64, 0.0),  # running mean absolute deviation of detrended increments
    "j_q": (np.float64, np.inf),  # quantum: the smallest non-zero change seen
    "j_n": (np.int32, 0),  # increments accepted
    "j_t0": (np.float64, np.nan),  # time of the first sample
    "j_e": (np.float64, 0.0),  # envelope: the largest accepted departure, slowly forgotten
    "j_pt": (np.float64, np.nan),  # the held candidate (NaN time: none)
    "j_px": (np.float64, np.nan),
    "j_pd": (np.float64, np.nan),  # its departure from the trend
}
WARM = 10  # increments before a jump is judged
WARM_S = 86400.0  # and seconds
_ENVELOPE = 1.5  # a departure up to this times the largest normal one is no jump
_ENV_HALF_LIFE = 30 * 86400.0
NONE, SPIKE, STEP, RAMP = 0, 1, 2, 3
_MAD_TO_SD = 1.2533  # mean absolute deviation of a normal distribution times this is its sd


@numba.njit(cache=True, nogil=True, inline="always")
def _horizon(dt, period):
    """How far the running velocity is extrapolated to decide a held jump: at most 3 sample
    periods (across a long gap its error would outweigh the jump it is to judge)."""
    if np.isfinite(period) and period > 0.0:
        return min(dt, 3.0 * period)
    return dt


@numba.njit(cache=True, nogil=True, inline="always")
def jump_scale(i, x, j_s, j_q):
    """The channel's increment scale (a standard deviation), floored at its quantum."""
    q = j_q[i] if np.isfinite(j_q[i]) else 0.0
    return max(_MAD_TO_SD * j_s[i], q, 1e-12 * max(1.0, abs(x)))


@numba.njit(cache=True, nogil=True, inline="always")
def jump_step(i, t, x, jump_z, period, JS):
    """Feed one valid sample of channel i. Returns (decision, candidate, size, pt, px):
    decision about the previously held candidate (NONE, SPIKE: it was a glitch, STEP: a new
    level, RAMP: no jump but a new velocity, the held sample is data; `size` its departure from
    the trend, (pt, px) its time and value); candidate True when this sample is itself held (a
    jump, decided by the next sample)."""
    j_t, j_x, j_v, j_s, j_q, j_n, j_t0, j_e, j_pt, j_px, j_pd = JS
    decision = NONE
    size = np.nan
    pt = j_pt[i]
    px = j_px[i]
    if np.isfinite(pt):
        back = abs(x - (j_x[i] + j_v[i] * _horizon(t - j_t[i], period)))
        stay = abs(x - (px + j_v[i] * _horizon(t - pt, period)))
        limit = max(jump_z * jump_scale(i, x, j_s, j_q), _ENVELOPE * j_e[i])
        if back <= stay:
            decision = SPIKE
            size = j_pd[i]
        elif stay <= limit:
            decision = STEP
            size = j_pd[i]
            j_t[i] = pt  # the new level becomes the reference; scale and velocity unchanged
            j_x[i] = px
        else:
            # it goes on moving away as fast: no step but a new velocity (an acceleration must
            # never be taken out of the series); both samples are data, the velocity jumps
            decision = RAMP
            j_v[i] = (x - px) / (t - pt) if t > pt else j_v[i]
            j_t[i] = pt
            j_x[i] = px
        j_pt[i] = np.nan
        j_px[i] = np.nan
        j_pd[i] = np.nan
    if not np.isfinite(j_t[i]):
        j_t[i] = t
        j_x[i] = x
        j_t0[i] = t
        return decision, False, size, pt, px
    dt = t - j_t[i]
    if dt <= 0.0:
        return decision, False, size, pt, px  # a repeated time: nothing to learn from it
    d = x - (j_x[i] + j_v[i] * dt)
    gap = 1.0
    if np.isfinite(period) and period > 0.0:
        # a gap allows a larger change: the noise of a longer step, and the error of the
        # running velocity (about 0.16 increment scales per period) carried across it
        gap = np.sqrt(min(max(dt / period, 1.0), 9.0)) + 0.16 * max(dt / period - 1.0, 0.0)
    j_e[i] *= 0.5 ** (dt / _ENV_HALF_LIFE)
    limit = max(jump_z * jump_scale(i, x, j_s, j_q), _ENVELOPE * j_e[i]) * gap
    warm = j_n[i] >= WARM and t - j_t0[i] >= WARM_S
    if warm and abs(d) > limit:
        j_pt[i] = t
        j_px[i] = x
        j_pd[i] = d
        return decision, True, size, pt, px
    inc = abs(x - j_x[i])
    if inc > 1e-12 * max(1.0, abs(x)) and inc < j_q[i]:
        j_q[i] = inc
    w = max(0.05, 1.0 / (j_n[i] + 1.0))
    dev = abs(d)
    if dev > j_e[i]:
        j_e[i] = dev
    if warm:
        dev = min(dev, jump_z * jump_scale(i, x, j_s, j_q))  # the tail must not inflate it
    j_s[i] += w * (dev - j_s[i])
    j_v[i] += max(0.05, 1.0 / (j_n[i] + 1.0)) * ((x - j_x[i]) / dt - j_v[i])
    j_t[i] = t
    j_x[i] = x
    if j_n[i] < (1 << 30):
        j_n[i] += 1
    return decision, False, size, pt, px
