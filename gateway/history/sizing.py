"""How much disk 13 months of a site's history take: the default cap of the history store and the
check that a configured one is large enough (`[history] max_bytes`).

The statistics dominate: one row per point and 5-minute window that saw a poll. A point polled
every 5 minutes or faster (or switched to such an abnormal period) fills every window, a slower
one a share of them; months are counted at 31 days. ROW_BYTES is what a row costs in the file,
index and page slack included, measured on the store itself (tests/unit/test_history_store.py
checks the figure still holds).

>>> windows_per_point(months=13)
124992
>>> size_estimate([300.0, 3600.0], months=13) // (1024 * 1024)
8
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["ROW_BYTES", "OVERHEAD_BYTES", "WINDOW_S", "windows_per_point", "size_estimate",
           "default_max_bytes"]

WINDOW_S = 300.0  # the telemetry's statistics window (gateway/telemetry.py STATS_PERIOD)
ROW_BYTES = 56  # measured: one point's window in the SQLite file, with its share of the b-tree
OVERHEAD_BYTES = 1024 * 1024  # schema, device states, runs, manual readings, WAL slack


def windows_per_point(months: int) -> int:
    """Windows of `months` whole months and the current one, at 31 days a month."""
    return int((months + 1) * 31 * 86400 / WINDOW_S)


def size_estimate(fastest_periods: Iterable[float], months: int) -> int:
    """Bytes for `months` of statistics of points polled at most every `fastest_periods` seconds
    (each point's faster of its normal and abnormal period)."""
    rows = 0.0
    for period in fastest_periods:
        share = 1.0 if period <= WINDOW_S else WINDOW_S / period
        rows += windows_per_point(months) * share
    return int(math.ceil(rows * ROW_BYTES)) + OVERHEAD_BYTES


def default_max_bytes(estimate: int) -> int:
    """The cap when the config sets none: the estimate with a quarter to spare, in whole MiB."""
    mib = 1024 * 1024
    return int(math.ceil(estimate * 1.25 / mib)) * mib
