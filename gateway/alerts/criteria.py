"""What a safety event says: each detector's own decision in words, Chinese and English.

An event's `threshold`, `criterion`, `message` and `evidence` must agree, and they must be the
decision of the detector that made it: a level crossing quotes the level, a rate its rate and
limit, the tangent angle its angle and level, inverse velocity its forecast failure time with its
uncertainty, a step its size, a learned detector how far outside its learned range the value is
(docs/contracts.md#events). A downgrade or a clear is the decision of the detector that held the
level, said so, with the detector that now holds a lower level, if any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.alerts.encoder import LEVEL_NAMES, LEVEL_ZH, safety_message
from gateway.config.model import Point
from gateway.config.quantities import QUANTITIES

__all__ = ["Decision", "describe", "DETECTOR_NAMES"]

# (Chinese, English) names of the graded detectors as an operator reads them
DETECTOR_NAMES = {
    "threshold": ("阈值", "threshold"),
    "rate": ("变化速率", "rate of change"),
    "tangent_angle": ("改进切线角", "improved tangent angle"),
    "inverse_velocity": ("反速度法", "inverse velocity"),
    "step": ("突变", "abrupt step"),
    "generic": ("异常检测", "anomaly detection"),
    "spike": ("尖峰", "spike"),
    "cusum": ("累积和", "CUSUM"),
    "river_hst": ("半空间树", "half-space trees"),
}


@dataclass(frozen=True)
class Decision:
    threshold: float | None  # the limit the detector compared with, in its own unit
    criterion: str
    message: dict[str, str]


def _f(v: float | None, digits: int = 3) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.{digits}f}".rstrip("0").rstrip(".")


def _per(per_s: float | None) -> str:
    return {86400.0: "/d", 3600.0: "/h", 60.0: "/min", 1.0: "/s"}.get(per_s or 86400.0,
                                                                     f"/{_f(per_s)} s")


def _names(p: Point) -> tuple[str, str]:
    q = QUANTITIES.get(p.quantity)
    return (q.zh, q.en) if q else (p.quantity, p.quantity)


def _threshold(p: Point, state: str, level: int, prev: int, value: float
               ) -> tuple[float | None, str]:
    th = p.thresholds
    if th is None:
        return None, ""
    if state in ("raised", "escalated"):
        for side, ls in (("upper", th.upper), ("lower", th.lower)):
            if ls is None:
                continue
            v = ls.thresholds[level - 1]
            if not math.isnan(v):
                op = ">=" if side == "upper" else "<="
                return v, f"value {op} {v:g} {p.unit} ({LEVEL_NAMES[level]})".replace("  ", " ")
        return None, ""
    for side, ls in (("upper", th.upper), ("lower", th.lower)):
        if ls is None:
            continue
        r = ls.restore[prev - 1]
        if not math.isnan(r):
            op = "<" if side == "upper" else ">"
            return r, f"value {op} restore level {r:g} {p.unit} of {LEVEL_NAMES[prev]}"
    return None, ""


def _raised(detector: str, level: int, p: Point, value: float, ev: dict[str, float],
            tz: ZoneInfo, observed: float) -> tuple[float | None, str, str, str]:
    """(threshold, criterion, zh clause, en clause) of a raise or escalation by `detector`."""
    u = p.unit
    lz, le = LEVEL_ZH[level], LEVEL_NAMES[level]
    if detector == "rate":
        per = _per(ev.get("per_s"))
        rate, limit, env = ev.get("rate"), ev.get("limit"), ev.get("envelope")
        learned = env is not None and math.isfinite(env)
        how_zh = f"，据历史最大速率 {_f(env)} {u}{per} 学得" if learned else ""
        how_en = f", learnt from the highest rate seen, {_f(env)} {u}{per}" if learned else ""
        return (limit, f"rate {_f(rate)} {u}{per} past {_f(limit)} {u}{per} ({le}"
                       f"{', learned' if learned else ''})",
                f"变化速率 {_f(rate)} {u}{per}，达到{lz}预警（速率限值 {_f(limit)} {u}{per}{how_zh}）",
                f"changing at {_f(rate)} {u}{per} reached {le} warning (rate limit "
                f"{_f(limit)} {u}{per}{how_en})")
    if detector == "tangent_angle":
        a, lvl = ev.get("angle_deg"), ev.get("level_deg")
        vn, vr = ev.get("v_now"), ev.get("v_ref")
        return (lvl, f"tangent angle {_f(a, 1)} deg >= {_f(lvl, 1)} deg ({le}; Xu Qiang 2009)",
                f"改进切线角 {_f(a, 1)}°（当前速率 {_f(vn)} {u}/d，等速变形速率 {_f(vr)} {u}/d），"
                f"达到{lz}预警（{_f(lvl, 1)}°）",
                f"improved tangent angle {_f(a, 1)} deg (velocity {_f(vn)} {u}/d against steady "
                f"creep {_f(vr)} {u}/d) reached {le} warning ({_f(lvl, 1)} deg)")
    if detector == "inverse_velocity":
        lead, sd = ev.get("lead_s"), ev.get("lead_sd_s")
        lvl = (ev.get("level_lead_s") or math.nan) / 86400.0
        when = (datetime.fromtimestamp(observed + lead, tz).strftime("%Y-%m-%d %H:%M")
                if lead is not None and math.isfinite(lead) else "-")
        d, s = (lead or math.nan) / 86400.0, (sd or math.nan) / 86400.0
        r2, n, vn = ev.get("r2"), ev.get("points"), ev.get("v_now")
        return (lvl, f"forecast failure within {_f(lvl, 2)} d ({le}; inverse velocity, Fukuzono "
                     "1985)",
                f"反速度法预测 {when} 破坏（{_f(d, 2)} ± {_f(s, 2)} 天后；R² {_f(r2, 2)}，"
                f"{_f(n, 0)} 点，当前速率 {_f(vn)} {u}/d），达到{lz}预警（{_f(lvl, 2)} 天内）",
                f"inverse velocity forecasts failure at {when} (in {_f(d, 2)} ± {_f(s, 2)} d; "
                f"R² {_f(r2, 2)}, {_f(n, 0)} points, velocity {_f(vn)} {u}/d) reached {le} "
                f"warning (failure within {_f(lvl, 2)} d)")
    if detector == "step":
        step, z = ev.get("step"), ev.get("z")
        return (None, f"abrupt step of {_f(step)} {u}, {_f(z, 1)} times its usual change ({le},"
                      " learned)",
                f"突变 {_f(step)} {u}（常规变化的 {_f(z, 1)} 倍），达到{lz}预警",
                f"abrupt step of {_f(step)} {u} ({_f(z, 1)} times its usual change) reached {le}"
                " warning")
    if detector == "generic":
        z, zt, exp = ev.get("z"), ev.get("z_threshold"), ev.get("expected")
        return (zt, f"{_f(z, 1)} scales from the expected {_f(exp)} {u}, past {_f(zt, 1)} ({le},"
                    " learned)",
                f"{_f(value)} {u} 偏离预期值 {_f(exp)} {u} {_f(z, 1)} 倍尺度（阈值 {_f(zt, 1)}），"
                f"{lz}预警",
                f"{_f(value)} {u} is {_f(z, 1)} scales from the expected {_f(exp)} {u} "
                f"(threshold {_f(zt, 1)}): {le} warning")
    name_zh, name_en = DETECTOR_NAMES.get(detector, (detector, detector))
    return (None, f"{name_en} ({le})", f"{name_zh}检测达到{lz}预警",
            f"{name_en} reached {le} warning")


def describe(detector: str, state: str, level: int, prev: int, p: Point, value: float,
             evidence: dict[str, float], held_by: str | None, tz: ZoneInfo,
             observed: float) -> Decision:
    """The event's words. For a raise or escalation `detector` is the one that made it; for a
    downgrade or clear, the one that held `prev`, and `held_by` the one that holds `level` now
    (None when cleared, or when it is the same)."""
    zh_q, en_q = _names(p)
    v = f"{_f(value)} {p.unit}".strip()
    if detector == "threshold" and (held_by in (None, "threshold")):
        threshold, criterion = _threshold(p, state, level, prev, value)
        return Decision(threshold, criterion, safety_message(
            state, level, prev, p.name, p.quantity, value, p.unit,
            threshold if state in ("raised", "escalated") else None))
    if state in ("raised", "escalated"):
        threshold, criterion, zh, en = _raised(detector, level, p, value, evidence, tz, observed)
        if state == "escalated":
            zh, en = zh.replace("达到", "升级为", 1), en.replace(" reached ", " escalated to ", 1)
        return Decision(threshold, criterion,
                        {"zh": f"{p.name} {zh_q} {v}，{zh}", "en": f"{p.name} {en_q} {v}: {en}"})
    name_zh, name_en = DETECTOR_NAMES.get(detector, (detector, detector))
    if detector == "threshold":
        threshold, criterion = _threshold(p, state, level, prev, value)
    else:
        threshold, criterion = None, f"{name_en} no longer at {LEVEL_NAMES[prev]}"
    if level == 0:
        zh = f"{p.name} {zh_q} {v}，{name_zh}{LEVEL_ZH[prev]}预警解除"
        en = f"{p.name} {en_q} {v}: {name_en} {LEVEL_NAMES[prev]} warning cleared"
    else:
        by_zh, by_en = DETECTOR_NAMES.get(held_by or detector, (held_by, held_by))
        zh = (f"{p.name} {zh_q} {v}，{name_zh}{LEVEL_ZH[prev]}预警解除，"
              f"仍为{LEVEL_ZH[level]}预警（{by_zh}）")
        en = (f"{p.name} {en_q} {v}: {name_en} {LEVEL_NAMES[prev]} warning released; "
              f"{LEVEL_NAMES[level]} warning held by {by_en}")
        criterion += f"; {LEVEL_NAMES[level]} held by {held_by or detector}"
    return Decision(threshold, criterion, {"zh": zh, "en": en})
