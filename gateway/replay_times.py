"""The time column of a logger export: which form it is written in, decided from the whole
column, and each cell as a datetime (naive = in the export's zone) or epoch seconds.

Forms: ISO 8601 and its logger relatives (`2016-01-12`, `2020-06-01 0:05`, `2016/01/12 13:45`,
`2016.1.12 1:45 PM`, a `T` or spaces, fractions, `Z` or an offset, `24:00`), `12.01.2016` and
`1/12/2016` (day- or month-first as the column shows; undecided, `/` is month-first, Excel's US
default, `.` and `-` day-first), compact `20160112[1345[00]]`, and numbers: epoch seconds, epoch
milliseconds (>= 1e11) or Excel serial days (a column whose median is 10,000 .. 100,000).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["TimeColumn", "epoch"]

_EXCEL_EPOCH = datetime(1899, 12, 30)  # Excel's 1900 date system, its leap-year bug included

_TIME = r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?\s*([AaPp][Mm])?)?"
_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME
                  + r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?$")
_XYY = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})[-/.](\d{4})" + _TIME + r"$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:[T ]?(\d{2})(\d{2})(\d{2})?)?$")


class TimeColumn:
    """Parses one column of times, deciding its form from the whole column first."""

    def __init__(self, cells: list[str], zone: ZoneInfo):
        self.zone = zone
        numbers = []
        for c in cells:
            try:
                number = float(c)
            except ValueError:
                continue
            if math.isfinite(number):  # an "inf" cell is a bad row, not a vote on the form
                numbers.append(number)
        self.numeric = "epoch s"
        if numbers:
            med = float(np.median(numbers))
            head = [c for c in cells[:200] if _is_float(c)]
            if head and all(_compact_ok(c) for c in head):
                self.numeric = "compact"
            elif med >= 1e11:
                self.numeric = "epoch ms"
            elif 1e4 <= med < 1e5:
                self.numeric = "excel serial days"
        dmy = [m for m in (_XYY.match(c) for c in cells[:5000]) if m]
        self.day_first = True
        assumed = ""
        if dmy:
            if any(int(m.group(1)) > 12 for m in dmy):
                self.day_first = True
            elif any(int(m.group(3)) > 12 for m in dmy):
                self.day_first = False
            else:
                self.day_first = dmy[0].group(2) != "/"
                assumed = " (assumed: no day above 12)"
        self.form = (("day-first" if self.day_first else "month-first") + assumed if dmy
                     else self.numeric if numbers and len(numbers) * 2 > len(cells) else "iso")

    def naive_or_aware(self, cell: str) -> datetime | float | None:
        """A datetime (naive = in the zone), epoch seconds, or None when unreadable."""
        if _is_float(cell):
            v = float(cell)
            if self.numeric == "compact":
                m = _COMPACT.match(cell)
                return _dt(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5),
                           m.group(6), None, None) if m else None
            if self.numeric == "excel serial days":
                # a serial day printed to 6 decimals is within 0.05 s: loggers stamp seconds
                return _EXCEL_EPOCH + timedelta(seconds=round(v * 86400.0)) \
                    if 0 < v < 1e6 else None
            return v / 1000.0 if self.numeric == "epoch ms" else v
        m = _YMD.match(cell)
        if m:
            dt = _dt(*m.groups()[:8])
            if dt is not None and m.group(9):
                off = m.group(9)
                if off == "Z":
                    return dt.replace(tzinfo=UTC)
                hours, minutes = int(off[1:3]), int(off[-2:]) if len(off) > 3 else 0
                sign = -1 if off[0] == "-" else 1
                return dt.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
            return dt
        m = _XYY.match(cell)
        if m:
            a, b = m.group(1), m.group(3)
            day, month = (a, b) if self.day_first else (b, a)
            return _dt(m.group(4), month, day, *m.groups()[4:9])
        return None


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _compact_ok(cell: str) -> bool:
    m = _COMPACT.match(cell)
    return bool(m) and _dt(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5),
                           m.group(6), None, None) is not None


def _dt(y, mo, d, h, mi, s, frac, ampm) -> datetime | None:
    try:
        hour = int(h or 0)
        if ampm:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
        extra = 0
        if hour == 24 and int(mi or 0) == 0 and int(s or 0) == 0:  # "24:00" = next midnight
            hour, extra = 0, 1
        us = int((frac or "0").ljust(6, "0")[:6])
        return datetime(int(y), int(mo), int(d), hour, int(mi or 0), int(s or 0), us) \
            + timedelta(days=extra)
    except (ValueError, OverflowError):
        return None


def epoch(value: datetime | float, zone: ZoneInfo, fold: int = 0) -> float:
    if isinstance(value, float):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone, fold=fold)
    return value.timestamp()
