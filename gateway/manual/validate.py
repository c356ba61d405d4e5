"""Checking a manual reading before it is stored: the point, the value against the point's range,
the time, who read it. Every refusal says what and why in Chinese and English, and names the key
(`point`, `value`, `at`, `by`, `note`), so the CLI and the platform's `reading` command answer
alike.

The point's range is its configured plausible range and the sensor's measuring range from its
profile, through the point's conversion (none, linear, a radar's mount elevation minus the empty
height; a vibrating-wire gauge's frequency range through its pressure, head or depth at its
reference temperature, widened by a tenth of the span either side for the temperature and
barometric terms): a value the instrument itself could not show is a typing error, not a
reading.
"""

from __future__ import annotations

import math
import uuid

from gateway.config.model import Point, SiteConfig
from gateway.history.readings import Reading

__all__ = ["ReadingError", "point_range", "check_reading", "FUTURE_SLACK_S"]

FUTURE_SLACK_S = 300.0  # a reading may be stamped a little ahead of the gateway's clock
MAX_BY, MAX_NOTE = 64, 500


class ReadingError(ValueError):
    """A refused reading: `key` is the argument at fault, `zh`/`en` the reason."""

    def __init__(self, key: str, zh: str, en: str):
        super().__init__(f"{key}: {en}")
        self.key, self.zh, self.en = key, zh, en

    def text(self, lang: str) -> str:
        return f"{self.key}: {self.zh if lang == 'zh' else self.en}"


def point_range(cfg: SiteConfig, p: Point) -> tuple[float, float]:
    """The narrowest of the point's plausible range and its sensor's range (±inf where open)."""
    lo = p.plausible_min if p.plausible_min is not None else -math.inf
    hi = p.plausible_max if p.plausible_max is not None else math.inf
    if p.device and p.channel:
        reg = cfg.device(p.device).profile.register(p.channel)
        if reg.valid_min is not None or reg.valid_max is not None:
            rmin = reg.valid_min if reg.valid_min is not None else -math.inf
            rmax = reg.valid_max if reg.valid_max is not None else math.inf
            kind, params = p.conversion.kind, p.conversion.params
            ends = None
            if kind == "none":
                ends = (rmin, rmax)
            elif kind == "linear":
                a, b = params.get("scale", 1.0), params.get("offset", 0.0)
                ends = (a * rmin + b, a * rmax + b)
            elif kind == "vibrating_wire" and math.isfinite(rmin) and math.isfinite(rmax):
                ends = _vibrating_wire(p.quantity, params, rmin, rmax)
            elif kind == "radar_level":
                from gateway.convert import UNIT_TO_METRE

                u = UNIT_TO_METRE.get(reg.unit, 0.001)
                ends = (params["mount_elevation"] - rmax * u, params["mount_elevation"] - rmin * u)
            if ends is not None and all(not math.isnan(e) for e in ends):
                lo, hi = max(lo, min(ends)), min(hi, max(ends))
    return lo, hi


def _vibrating_wire(quantity: str, params: dict, fmin: float, fmax: float
                    ) -> tuple[float, float]:
    """A gauge's frequency range as the point's quantity (gateway/convert.py's chain at T0)."""
    from gateway.convert import GRAVITY_KPA_PER_M

    out = []
    for f in (fmin, fmax):
        pressure = params["k"] * (f * f / 1000.0 - params["f0"])
        head = pressure / GRAVITY_KPA_PER_M + params["install_elevation"]
        out.append({"pore_pressure": pressure, "piezometric_head": head}.get(
            quantity, params.get("mouth_elevation", 0.0) - head))
    lo, hi = min(out), max(out)
    return lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)


def _point(cfg: SiteConfig, name: str) -> Point:
    for p in cfg.points:
        if p.name == name:
            return p
    close = [p.name for p in cfg.points if p.name.lower() == name.lower()
             or p.name.replace("-", "") == name.replace("-", "")]
    names = ", ".join(p.name for p in cfg.points[:20])
    hint_en = f"did you mean {close[0]}?" if close else f"the site's points: {names}"
    hint_zh = f"是否为 {close[0]}？" if close else f"本站测点：{names}"
    raise ReadingError("point", f"站点 {cfg.site.code} 没有测点 {name}（{hint_zh}）",
                       f"site {cfg.site.code} has no point {name!r} ({hint_en})")


def check_reading(cfg: SiteConfig, point: str, value: object, at: float, by: str,
                  note: str | None, now: float, source: str, oldest: float | None = None
                  ) -> Reading:
    """A valid `Reading`, or ReadingError. `now` is the gateway's clock; `oldest` the earliest
    time the history store still keeps (a reading before it could never be reported)."""
    p = _point(cfg, point)
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(str(value).strip())
        except ValueError:
            raise ReadingError("value", f"{value!r} 不是数值", f"{value!r} is not a number") \
                from None
    value = float(value)
    if not math.isfinite(value):
        raise ReadingError("value", f"{value} 不是有限数值", f"{value} is not a finite number")
    lo, hi = point_range(cfg, p)
    if not lo <= value <= hi:
        span = f"[{lo:g}, {hi:g}] {p.unit}".strip()
        raise ReadingError("value", f"{p.name} 的读数 {value:g} {p.unit} 超出该测点的量程 {span}",
                           f"{value:g} {p.unit} is outside {p.name}'s range {span}")
    if not math.isfinite(at):
        raise ReadingError("at", "读数时间无效", "the reading's time is not valid")
    if at > now + FUTURE_SLACK_S:
        raise ReadingError("at", f"读数时间晚于网关时钟 {at - now:.0f} 秒",
                           f"the reading's time is {at - now:.0f} s ahead of the gateway's clock")
    if oldest is not None and at < oldest:
        raise ReadingError("at", "读数时间早于历史库保存的最早月份",
                           "the reading's time is before the oldest month the history store keeps")
    by = (by or "").strip()
    if not by or len(by) > MAX_BY:
        raise ReadingError("by", f"需填写读数人（1–{MAX_BY} 个字符）",
                           f"say who read it (1 to {MAX_BY} characters)")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ReadingError("note", f"备注最多 {MAX_NOTE} 个字符",
                           f"the note is longer than {MAX_NOTE} characters")
    return Reading(str(uuid.uuid4()), p.name, value, float(at), by, note, source, now)
