"""Numba helpers shared by the graded detectors: levels, score and debounce with hysteresis.

Every graded detector turns its measure into `y`, a number where higher is worse (a rate with its
sign for the worse direction, a tangent angle, minus a lead time ...), and grades `y` against four
per-channel levels `thr[n, 4]` (blue, yellow, orange, red; NaN = unused) with restore levels
`rest[n, 4]` below them. The rule is the one of `detectors.threshold` (docs/requirements.md R4) in a compact
per-channel form: one raise run and one release run per channel instead of one per level.

The helpers are `inline="always"`, so each detector's kernel compiles them into its own machine
code. Numba's disk cache keys a kernel on its own file only: after editing this module, clear the
cache folder (NUMBA_CACHE_DIR) or the detectors keep the old code until their own files change.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["COUNT_CAP", "HYSTERESIS_STATE", "level_past", "level_held", "level_score", "score_at",
           "debounce"]

COUNT_CAP = 1 << 30  # run counters saturate here instead of wrapping after years in one state

# per-channel state of `debounce`, in the order the kernels take it
HYSTERESIS_STATE = {
    "grade": np.int8,  # the debounced grade 0..4
    "up_n": np.int32,  # samples in the current raise run
    "up_t0": np.float64,  # time of the first of them
    "up_lvl": np.int8,  # lowest target level seen in the run: the level it raises to
    "dn_n": np.int32,  # samples in the current release run
    "dn_t0": np.float64,
    "dn_lvl": np.int8,  # highest held level seen in the run: the level it releases to
}


@numba.njit(cache=True, nogil=True, inline="always")
def score_at(k):
    """The score of level k (0 blue .. 3 red): 0.5, 2/3, 5/6, 1. Every detector's score means the
    same: 0.5 is the blue decision, 1 red, and below 0.5 the evidence toward blue (0 when there is
    none, or while the detector warms up), so a platform can threshold scores of any detector and
    a benchmark can sweep them."""
    return 0.5 + k / 6.0


@numba.njit(cache=True, nogil=True, inline="always")
def level_past(y, thr, i):
    """Highest level 1..4 whose threshold y is at or past (0: none). NaN levels are skipped."""
    lvl = 0
    for k in range(4):
        if not np.isnan(thr[i, k]) and y >= thr[i, k]:
            lvl = k + 1
    return lvl


@numba.njit(cache=True, nogil=True, inline="always")
def level_held(y, rest, i):
    """Highest level 1..4 that y has not gone back below the restore level of (0: none)."""
    lvl = 0
    for k in range(4):
        if not np.isnan(rest[i, k]) and y >= rest[i, k]:
            lvl = k + 1
    return lvl


@numba.njit(cache=True, nogil=True, inline="always")
def level_score(y, thr, i):
    """Score in [0, 1] (`score_at`: 0.5 at blue, 2/3 yellow, 5/6 orange, 1 red), linear between
    set levels, rising from 0 at half a level-gap below the first set level (the threshold
    detector's scale, so scores of different detectors compare). Flat beyond the highest set
    level."""
    prev_y = np.nan
    prev_s = 0.0
    for k in range(4):
        b = thr[i, k]
        if np.isnan(b):
            continue
        s_b = score_at(k)
        if np.isnan(prev_y):
            gap = np.nan
            for kk in range(k + 1, 4):  # distance to the next distinct set level
                if not np.isnan(thr[i, kk]) and thr[i, kk] != b:
                    gap = thr[i, kk] - b
                    break
            if np.isnan(gap):
                gap = 0.1 * abs(b)
            if gap <= 0.0:
                gap = 1.0
            lo = b - 0.5 * gap
            if y < b:
                return 0.0 if y <= lo else s_b * (y - lo) / (b - lo)
        elif y < b:
            return prev_s + (s_b - prev_s) * (y - prev_y) / (b - prev_y)
        prev_y = b
        prev_s = s_b
    return prev_s


@numba.njit(cache=True, nogil=True, inline="always")
def debounce(i, t, target, held, hs, dp):
    """Advance channel i's debounced grade with one valid measure and return the grade.

    target: the level the measure is past now; held: the level whose restore level it has not gone
    back below (held >= target). A raise to the lowest target of the run needs `raise_samples`
    samples past it and `raise_hold` seconds since the first (red at once when `red_immediate`);
    a sample between a higher level's restore level and threshold pauses the run, one back past it
    ends it. A release to the highest held level of the run needs `clear_samples` consecutive
    samples back past the grade's restore level and `clear_hold` seconds. Oscillation between a
    restore level and its threshold therefore raises once and never flaps.
    """
    grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl = hs
    raise_n, raise_hold, clear_n, clear_hold, red_now = dp
    g = grade[i]
    if target > g:
        dn_n[i] = 0
        if up_n[i] == 0:
            up_t0[i] = t
            up_lvl[i] = target
        elif target < up_lvl[i]:
            up_lvl[i] = target
        if up_n[i] < COUNT_CAP:
            up_n[i] += 1
        if target == 4 and red_now[i]:
            grade[i] = 4
            up_n[i] = 0
        elif up_n[i] >= raise_n[i] and t - up_t0[i] >= raise_hold[i]:
            grade[i] = up_lvl[i]
            up_n[i] = 0
    elif held > g:
        dn_n[i] = 0  # in a higher level's band: the raise run pauses
    else:
        up_n[i] = 0
        if held < g:
            if dn_n[i] == 0:
                dn_t0[i] = t
                dn_lvl[i] = held
            elif held > dn_lvl[i]:
                dn_lvl[i] = held
            if dn_n[i] < COUNT_CAP:
                dn_n[i] += 1
            if dn_n[i] >= clear_n[i] and t - dn_t0[i] >= clear_hold[i]:
                grade[i] = dn_lvl[i]
                dn_n[i] = 0
        else:
            dn_n[i] = 0
    return grade[i]
