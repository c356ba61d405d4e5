"""A point's month in figures, from its 5-minute windows: range, mean, trend, threshold
exceedances and data completeness.

- min, max (with the window they fell in), the mean of every good sample, the first and last
  window means, and the trend: the least-squares slope of the window means against time, per day
  (the slow quantities' drift: phreatic line, displacement, beach length).
- Exceedances of each set level: runs of windows whose extreme passed it (max for an upper
  level, min for a lower one), a run ending at a window with data that did not; each window
  counts for the time until the next window with data, at most three poll slots (a missed poll
  or two is bridged, as the heartbeat's `online` bridges them; a longer gap is missing data,
  which completeness reports). So the figure is
  the measured time beyond the level at the poll period's resolution, independent of the
  detectors' debounce and of the alert episodes, which are reported beside it.
- Completeness: the share of the month's poll slots (one poll period, at least one window) that
  hold a good sample; a faster poll in an abnormal period adds nothing, a missing or bad poll,
  or the gateway not running, takes its slot away.
"""

from __future__ import annotations

import math

import numpy as np

from gateway.report.source import Series

__all__ = ["point_figures", "exceedance", "completeness", "WINDOW_S"]

WINDOW_S = 300.0
LEVELS = ("blue", "yellow", "orange", "red")


def _ms(t: float) -> int:
    return int(round(t * 1000))


def _f(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def exceedance(start: np.ndarray, extreme: np.ndarray, level: float, upper: bool, slot: float,
               end: float) -> tuple[int, float]:
    """(runs, seconds) of the windows (starts, with data) whose extreme passed `level`.

    >>> s = np.array([0.0, 600, 1200, 1800, 2400])
    >>> exceedance(s, np.array([1.0, 5, 6, 1, 7]), 5.0, True, 600.0, 3000.0)
    (2, 1800.0)
    """
    if start.size == 0:
        return 0, 0.0
    beyond = extreme >= level if upper else extreme <= level
    span = np.minimum(np.diff(np.append(start, end)), slot)
    runs = int(np.count_nonzero(beyond & ~np.r_[False, beyond[:-1]]))
    return runs, float(span[beyond].sum())


def completeness(start: np.ndarray, count: np.ndarray, period: float, month_s: float
                 ) -> float | None:
    """Share of the month's poll slots holding a good sample (None without a period).

    >>> completeness(np.array([0.0, 600, 1200]), np.array([1, 0, 1]), 600.0, 2400.0)
    0.5
    """
    if period <= 0 or month_s <= 0:
        return None
    slot = max(period, WINDOW_S)
    expected = month_s / slot
    good = count > 0
    if period >= WINDOW_S:
        got = float(np.unique(np.floor(start[good] / slot)).size)
    else:
        per_window = WINDOW_S / period
        got = float(np.minimum(count[good], per_window).sum() / per_window)
    return round(min(1.0, got / expected), 6)


def point_figures(s: Series, levels: dict[str, tuple[str, float]], period: float,
                  month_start: float, month_end: float) -> dict:
    """The figures of one point over the month (`levels`: name -> (side, threshold))."""
    good = s.count > 0
    n = float(s.count[good].sum())
    out: dict = {"samples": int(n), "polls": int(s.samples.sum()),
                 "completeness": completeness(s.start, s.count, period, month_end - month_start),
                 "min": None, "min_at": None, "max": None, "max_at": None, "mean": None,
                 "first": None, "last": None, "trend_per_day": None, "change": None,
                 "exceedances": {}}
    if not n:
        for name in levels:
            out["exceedances"][name] = {"episodes": 0, "seconds": 0.0}
        return out
    start, mean = s.start[good], s.mean[good]
    k_min, k_max = int(np.nanargmin(s.min[good])), int(np.nanargmax(s.max[good]))
    out.update({
        "min": _f(s.min[good][k_min]), "min_at": _ms(start[k_min]),
        "max": _f(s.max[good][k_max]), "max_at": _ms(start[k_max]),
        "mean": _f(float((mean * s.count[good]).sum()) / n),
        "first": _f(mean[0]), "last": _f(mean[-1]), "change": _f(mean[-1] - mean[0]),
    })
    if start.size >= 2 and np.ptp(start) > 0:
        days = (start - start[0]) / 86400.0
        slope = np.polyfit(days, mean, 1)[0]
        out["trend_per_day"] = _f(float(slope))
    slot = 3 * (max(period, WINDOW_S) if period > 0 else WINDOW_S)
    for name, (side, level) in levels.items():
        upper = side == "upper"
        runs, seconds = exceedance(start, s.max[good] if upper else s.min[good], level, upper,
                                   slot, month_end)
        out["exceedances"][name] = {"episodes": runs, "seconds": round(seconds, 3)}
    return out
