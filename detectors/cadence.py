"""The sample period each channel really has, learned from its own timestamps (numba helpers).

A detector built around one cadence fails at another: a 6-hour bucket holds nothing useful for
daily GNSS solutions, a 6-hour warm-up is one sample of them. So every time constant of a
detector is "at least this long, and at least so many samples": the configured seconds, or that
many times the observed sample period, whichever is longer. The period is a running estimate in
the log domain whose steps are clipped, so a gap of a week moves it by a few percent and a
change of cadence (a device put on its abnormal period) is followed within a dozen samples.

Inlined into the detectors' kernels (see `detectors.grading` about the numba cache after editing
this file).

>>> import numpy as np
>>> S = tuple(np.full(1, v, dtype=d) for v, d in ((np.nan, np.float64), (np.nan, np.float64),
...                                                (0, np.int32)))
>>> t = np.r_[np.arange(0.0, 20 * 86400, 86400), 40 * 86400.0]  # daily, then a 3-week gap
>>> est = [observe_period(0, float(v), *S) for v in t]
>>> round(est[10] / 86400, 3), round(est[-1] / 86400, 2)
(1.0, 1.07)
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CADENCE_STATE", "observe_period", "at_least"]

# name -> (dtype, initial value): last sample time, log of the period estimate, intervals seen
CADENCE_STATE = {
    "c_t": (np.float64, np.nan),
    "c_ldt": (np.float64, np.nan),
    "c_n": (np.int32, 0),
}

_STEP = 0.1  # weight of a new interval in the log-domain estimate
_CLIP = 0.7  # largest log step one interval may cause (a factor of 2): gaps barely move it


@numba.njit(cache=True, nogil=True, inline="always")
def observe_period(i, t, c_t, c_ldt, c_n):
    """Feed channel i's sample time t; return the sample period estimate (s), NaN before the
    second sample. A repeated or earlier time changes nothing."""
    if np.isfinite(c_t[i]):
        dt = t - c_t[i]
        if dt <= 0.0:
            return np.exp(c_ldt[i]) if c_n[i] > 0 else np.nan
        ld = np.log(dt)
        if c_n[i] == 0:
            c_ldt[i] = ld
        else:
            # the first intervals weigh more (a running mean), later ones 10 %, clipped
            w = max(_STEP, 1.0 / (c_n[i] + 1.0))
            c_ldt[i] += w * min(max(ld - c_ldt[i], -_CLIP), _CLIP)
        if c_n[i] < (1 << 30):
            c_n[i] += 1
    c_t[i] = t
    return np.exp(c_ldt[i]) if c_n[i] > 0 else np.nan


@numba.njit(cache=True, nogil=True, inline="always")
def at_least(seconds, samples, period):
    """max(seconds, samples x period): a window in time that holds enough samples. With no
    period known yet, the seconds."""
    if np.isfinite(period):
        return max(seconds, samples * period)
    return seconds
