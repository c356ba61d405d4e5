"""A report's month: the local calendar month of the site's time zone, as epoch seconds.

>>> from zoneinfo import ZoneInfo
>>> m = parse_month("2026-07", ZoneInfo("Asia/Shanghai"))
>>> (m.label, m.end - m.start, m.start_local)
('2026-07', 2678400.0, '2026-07-01 00:00:00')
>>> parse_month("2026-13", ZoneInfo("UTC"))
Traceback (most recent call last):
...
ValueError: month '2026-13' is not YYYY-MM (for example 2026-07)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["Month", "parse_month", "month_of", "previous_month"]


@dataclass(frozen=True)
class Month:
    label: str  # YYYY-MM
    start: float  # epoch s, the first instant of the month in the site's time zone
    end: float  # epoch s, the first instant of the next month
    tz: ZoneInfo

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def start_local(self) -> str:
        return self.local(self.start)

    def local(self, t: float) -> str:
        return datetime.fromtimestamp(t, self.tz).strftime("%Y-%m-%d %H:%M:%S")


def _month(year: int, month: int, tz: ZoneInfo) -> Month:
    start = datetime(year, month, 1, tzinfo=tz).timestamp()
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    end = datetime(ny, nm, 1, tzinfo=tz).timestamp()
    return Month(f"{year:04d}-{month:02d}", start, end, tz)


def parse_month(text: str, tz: ZoneInfo) -> Month:
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", text or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"month {text!r} is not YYYY-MM (for example 2026-07)")
    return _month(int(m.group(1)), int(m.group(2)), tz)


def month_of(t: float, tz: ZoneInfo) -> Month:
    d = datetime.fromtimestamp(t, tz)
    return _month(d.year, d.month, tz)


def previous_month(t: float, tz: ZoneInfo) -> Month:
    d = datetime.fromtimestamp(t, tz)
    y, m = (d.year - 1, 12) if d.month == 1 else (d.year, d.month - 1)
    return _month(y, m, tz)
