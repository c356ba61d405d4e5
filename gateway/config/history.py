"""`[history]` of a site config: the local history store (on by default), where it lives, its cap
and how many whole months it keeps (at least 13, so a month can be compared with the same month
a year before). A cap too small for 13 months of this site's points is a located problem that
says how much they need (`gateway/history/sizing.py`)."""

from __future__ import annotations

from pathlib import Path

from gateway.config.model import Device, History, Point
from gateway.config.reader import Reader
from gateway.history.sizing import default_max_bytes, size_estimate
from gateway.i18n import t

__all__ = ["build_history", "MIN_MONTHS"]

MIN_MONTHS = 13


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def build_history(doc: dict, r: Reader, base_dir: Path, state_dir: Path,
                  devices: list[Device], points: list[Point]) -> History:
    h = r.table(doc, "history", "history")
    r.known(h, {"enabled", "path", "max_bytes", "keep_months"}, "history")
    enabled = r.get(h, "enabled", "history", bool, True)
    path_text = r.get(h, "path", "history", str, None)
    path = (base_dir / path_text) if path_text else state_dir / "history.sqlite"
    months = r.number(h, "keep_months", "history", MIN_MONTHS, 1, 1200, integer=True)
    if months < MIN_MONTHS:
        r.problem("history.keep_months", t(f"must be at least {MIN_MONTHS}, got {months}",
                                           f"至少为 {MIN_MONTHS}，实际为 {months}"),
                  t("the monthly analysis compares a month with the same month a year before",
                    "月度分析要把一个月与上一年同月比较"))
        months = MIN_MONTHS
    by_name = {d.name: d for d in devices}
    fastest = [min(by_name[p.device].period, by_name[p.device].abnormal_period)
               if p.device in by_name else 0.0 for p in points]
    need = size_estimate(fastest, months)
    max_bytes = r.number(h, "max_bytes", "history", None, 1, 2**50, integer=True)
    if max_bytes is None:
        max_bytes = default_max_bytes(need)
    elif enabled and max_bytes < need:
        r.problem("history.max_bytes",
                  t(f"{max_bytes} bytes ({_mib(max_bytes)}) cannot keep {months} months of this "
                    f"site's {len(points)} point(s): they need about {need} bytes ({_mib(need)})",
                    f"{max_bytes} 字节（{_mib(max_bytes)}）存不下本站 {len(points)} 个测点 "
                    f"{months} 个月的数据：约需 {need} 字节（{_mib(need)}）"),
                  t(f"set max_bytes = {default_max_bytes(need)} or more, or leave it out (the "
                    "default is what the site needs, with a quarter to spare)",
                    f"设 max_bytes = {default_max_bytes(need)} 或更大，或不写（默认值为本站所需"
                    "再加四分之一余量）"))
    return History(enabled=enabled, path=path, max_bytes=max_bytes, keep_months=months)
