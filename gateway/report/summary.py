"""The paragraph on top of a monthly report, written for the city's analyst, in Chinese and English:
coverage (running time, online rate, completeness), the month's alerts by grade with how fast
they were acknowledged and cleared, faults in hours, the drift of the slow quantities, and the
manual comparison measurements. Every number in it is a figure of the same document."""

from __future__ import annotations

from gateway.config.quantities import QUANTITIES

__all__ = ["summary_text", "LEVEL_ZH", "SLOW"]

LEVEL_ZH = {"none": "无", "blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
# quantities whose month-long drift matters to the analyst (the phreatic line, the dam's
# displacement, the beach, the pond level)
SLOW = ("phreatic_depth", "piezometric_head", "pore_pressure", "gnss_disp", "inclinometer_disp",
        "dry_beach_length", "beach_crest_elev", "freeboard", "water_level", "seepage_flow")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def _num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "—"
    text = f"{v:+.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("+0", "-0") else text


def summary_text(doc: dict) -> dict[str, str]:
    s = doc["summary"]
    y, m = doc["month"].split("-")
    zh, en = [], []
    zh.append(f"{y}年{int(m)}月，{doc['site_name'] or doc['site']}（{doc['site']}）网关运行时间占"
              f"{_pct(doc['gateway_running']['fraction'])}，共 {s['points']} 个测点、"
              f"{s['devices']} 台设备。")
    en.append(f"In {doc['month']}, the gateway of {doc['site_name'] or doc['site']} "
              f"({doc['site']}) ran {_pct(doc['gateway_running']['fraction'])} of the month, "
              f"with {s['points']} point(s) on {s['devices']} device(s).")
    if doc["devices"]:
        worst = min(doc["devices"], key=lambda d: d["online_rate"])
        zh.append(f"设备月在线率平均 {_pct(s['online_rate_mean'])}，最低 {_pct(worst['online_rate'])}"
                  f"（{worst['device']}）；数据完整率平均 {_pct(s['completeness'])}。")
        en.append(f"Device online rate {_pct(s['online_rate_mean'])} on average, lowest "
                  f"{_pct(worst['online_rate'])} ({worst['device']}); data completeness "
                  f"{_pct(s['completeness'])} on average.")
    n = s["safety_episodes"]
    if not n:
        zh.append("本月未发生安全预警。")
        en.append("No safety alert was raised this month.")
    else:
        grades = [(g, v["episodes"]) for g, v in s["episodes_by_grade"].items() if v["episodes"]]
        hours = s["episodes_by_grade"]["blue"]["seconds"] / 3600
        zh.append(f"发生安全预警 {n} 次（按最高等级：" + "、".join(
            f"{LEVEL_ZH[g]} {k} 次" for g, k in reversed(grades)) + f"），最高{LEVEL_ZH[s['highest_level']]}，"
            f"预警累计 {hours:.1f} 小时；已确认 {s['acknowledged']} 次"
            + (f"，确认用时中位数 {s['median_ack_s'] / 60:.0f} 分钟" if s["median_ack_s"] is not None
               else "") + (f"，解除用时中位数 {s['median_clear_s'] / 3600:.1f} 小时"
                           if s["median_clear_s"] is not None else "") + "。")
        en.append(f"{n} safety alert episode(s) (by highest grade: " + ", ".join(
            f"{g} {k}" for g, k in reversed(grades)) + f"), highest {s['highest_level']}, "
            f"{hours:.1f} h at blue or above in all; {s['acknowledged']} acknowledged"
            + (f", median {s['median_ack_s'] / 60:.0f} min to acknowledge"
               if s["median_ack_s"] is not None else "")
            + (f", median {s['median_clear_s'] / 3600:.1f} h to clear"
               if s["median_clear_s"] is not None else "") + ".")
    if s["fault_episodes"]:
        kinds = sorted(doc["fault_hours"]["by_kind"].items(), key=lambda kv: -kv[1])
        zh.append(f"设备或传感器故障 {s['fault_episodes']} 次，累计 {s['fault_hours']:.1f} 小时（"
                  + "、".join(f"{k} {h:.1f} 小时" for k, h in kinds) + "）。")
        en.append(f"{s['fault_episodes']} fault episode(s), {s['fault_hours']:.1f} h in all ("
                  + ", ".join(f"{k} {h:.1f} h" for k, h in kinds) + ").")
    else:
        zh.append("本月无设备或传感器故障。")
        en.append("No device or sensor fault.")
    slow = [p for p in doc["points"] if p["quantity"] in SLOW and p["change"] is not None][:6]
    if slow:
        zh.append("缓变量：" + "；".join(
            f"{p['point']} {QUANTITIES[p['quantity']].zh} 月内变化 {p['change']:+.3f} {p['unit']}"
            f"（趋势 {_num(p['trend_per_day'], 4)} {p['unit']}/天）" for p in slow) + "。")
        en.append("Slow quantities: " + "; ".join(
            f"{p['point']} {QUANTITIES[p['quantity']].en} changed {p['change']:+.3f} {p['unit']}"
            f" (trend {_num(p['trend_per_day'], 4)} {p['unit']}/day)" for p in slow) + ".")
    if s["manual_readings"]:
        off = sorted({r["point"] for r in doc["manual_readings"] if r["agrees"] is False})
        zh.append(f"人工比测 {s['manual_readings']} 次" + (
            f"，{len(off)} 个测点与自动监测不符（{'、'.join(off)}），请核查传感器。" if off
            else "，均与自动监测一致。"))
        en.append(f"{s['manual_readings']} manual reading(s)" + (
            f"; {', '.join(off)} disagreed with the automatic readings: check the sensors."
            if off else ", all agreeing with the automatic readings."))
    return {"zh": "".join(zh), "en": " ".join(en)}
