"""The monthly report as one self-contained HTML page, Chinese by default or English.

The page carries everything in itself (styles, and the plots as PNG data URIs from `plots.py`)
and no script, so it opens offline, mails as one file and prints. Its order is the analyst's:
the summary, then each item with its points (figures, completeness, exceedances and a plot),
the alert episodes by grade with acknowledgement and clearing times, the faults, the devices'
online rates and the manual readings beside the automatic values. Plots are drawn for the first
`max_plots` points (those with alerts first); the rest keep their tables.
"""

from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.report.source import ReportSource

__all__ = ["render_html", "TEXT"]

TEXT = {
    "title": ("{site} 月度监测报告 {month}", "{site} monthly monitoring report {month}"),
    "meta": ("站点 {code} · 网关 {gateway} · 时区 {tz} · 统计期 {start} 至 {end} · 生成于 {gen}",
             "site {code} · gateway {gateway} · time zone {tz} · {start} to {end} · "
             "generated {gen}"),
    "summary": ("概要", "Summary"),
    "k_episodes": ("安全预警", "safety alerts"), "k_highest": ("最高等级", "highest level"),
    "k_faults": ("故障时长", "fault hours"), "k_online": ("最低在线率", "lowest online rate"),
    "k_complete": ("数据完整率", "data completeness"),
    "k_manual": ("人工读数", "manual readings"), "k_running": ("网关运行", "gateway running"),
    "items": ("监测项目与测点", "Items and points"),
    "point": ("测点", "point"), "unit": ("单位", "unit"), "min": ("最小值", "min"),
    "max": ("最大值", "max"), "mean": ("平均值", "mean"), "change": ("月变化", "change"),
    "trend": ("趋势/天", "trend/day"), "complete": ("完整率", "completeness"),
    "level": ("最高等级", "highest level"), "exceed": ("超阈值（次/小时）",
                                                     "beyond the levels (runs / h)"),
    "no_data": ("本月无数据", "no data this month"),
    "plot_alt": ("{point} 本月曲线", "{point} over the month"),
    "plot_omitted": ("测点较多，此处未绘图（见上表）", "not plotted (many points; see the table)"),
    "episodes": ("预警过程", "Alert episodes"),
    "by_grade": ("按等级统计", "By grade"), "grade": ("等级", "grade"),
    "g_episodes": ("次数（最高等级）", "episodes (highest)"),
    "g_reached": ("达到该等级", "reached it"), "g_hours": ("该等级及以上时长（小时）",
                                                      "hours at or above"),
    "raised": ("发布", "raised"), "cleared": ("解除", "cleared"),
    "duration": ("时长（小时）", "hours"), "source": ("来源", "source"),
    "acked": ("确认", "acknowledged"), "ack_after": ("确认用时（分钟）", "to acknowledge (min)"),
    "clear_after": ("解除用时（小时）", "to clear (h)"), "open": ("未解除", "open"),
    "none_episodes": ("本月无安全预警。", "No safety alert this month."),
    "faults": ("故障", "Faults"), "kind": ("类型", "kind"), "device": ("设备", "device"),
    "hours": ("小时", "hours"), "none_faults": ("本月无故障。", "No fault this month."),
    "devices": ("设备在线率", "Device online rate"),
    "online_h": ("在线时长（小时）", "online (h)"), "online_rate": ("月在线率", "online rate"),
    "offline_n": ("掉线次数", "went offline"),
    "manual": ("人工读数与自动监测", "Manual readings beside the automatic ones"),
    "at": ("时间", "time"), "value": ("人工值", "manual"), "by": ("读数人", "by"),
    "auto": ("自动值", "automatic"), "diff": ("差值", "difference"),
    "tol": ("允许偏差", "tolerance"), "agrees": ("一致", "agrees"), "note": ("备注", "note"),
    "yes": ("是", "yes"), "no": ("否", "no"), "none_manual": ("本月无人工读数。",
                                                           "No manual reading this month."),
    "method": ("统计口径：5分钟统计窗口；在线率＝在线时长/本月时长（网关未运行时计为不在线）；完整率＝含有效"
               "数据的采集周期/本月采集周期；超阈值按窗口极值统计；预警时长按事件记录。",
               "Method: 5-minute statistics windows; online rate = online time / the month "
               "(a gateway not running counts as offline); completeness = poll slots with a good "
               "sample / the month's slots; exceedances from window extremes; alert times from "
               "the event log."),
}
LEVEL = {"none": ("无", "none"), "blue": ("蓝色", "blue"), "yellow": ("黄色", "yellow"),
         "orange": ("橙色", "orange"), "red": ("红色", "red")}
SOURCE = {"automatic": ("自动", "automatic"), "manual": ("人工", "manual"),
          "item": ("项目汇总", "item")}

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px auto;
max-width:1100px;color:#1b1b1b;line-height:1.45}h1{font-size:22px;margin-bottom:4px}
h2{font-size:18px;border-bottom:2px solid #1d3557;padding-bottom:3px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#555;font-size:12px}
.summary{background:#f1f4f8;padding:10px 14px;border-left:4px solid #1d3557}
table{border-collapse:collapse;font-size:12px;margin:6px 0;width:100%}
th,td{border:1px solid #ccd;padding:3px 6px;text-align:right}th{background:#e8edf3}
td.l,th.l{text-align:left}.kpi td{font-size:15px;text-align:center}
.kpi th{text-align:center}figure{margin:6px 0 14px}figure img{width:100%;max-width:900px}
figcaption{font-size:11px;color:#555}
.lv-blue{color:#2f6fdf}.lv-yellow{color:#b39200}.lv-orange{color:#d97400}.lv-red{color:#d62828}
.lv-blue,.lv-yellow,.lv-orange,.lv-red{font-weight:bold}.foot{font-size:11px;color:#666;margin-top:30px}
"""


def _e(v: object) -> str:
    return html.escape("" if v is None else str(v))


def _n(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "—"
    text = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


def render_html(doc: dict, source: ReportSource, lang: str = "zh", max_plots: int = 60) -> str:
    """The page of one figures document; `source` gives the series to plot."""
    from gateway.report.plots import point_plot

    k = 0 if lang == "zh" else 1
    tz = ZoneInfo(doc["timezone"])

    def t(key: str, **kw: object) -> str:
        return TEXT[key][k].format(**kw) if kw else TEXT[key][k]

    def local(ms: int | None) -> str:
        return "—" if ms is None else datetime.fromtimestamp(ms / 1000, tz).strftime(
            "%m-%d %H:%M")

    def lv(name: str) -> str:
        return f'<span class="lv-{_e(name)}">{_e(LEVEL.get(name, (name, name))[k])}</span>'

    s = doc["summary"]
    a, b = doc["period"]["start"] / 1000, doc["period"]["end"] / 1000
    out = [f'<!DOCTYPE html><html lang="{"zh-CN" if k == 0 else "en"}"><head>'
           f'<meta charset="utf-8"><title>{_e(t("title", site=doc["site_name"] or doc["site"], month=doc["month"]))}</title>'
           f"<style>{_CSS}</style></head><body>",
           f'<h1>{_e(t("title", site=doc["site_name"] or doc["site"], month=doc["month"]))}</h1>',
           f'<p class="meta">{_e(t("meta", code=doc["site"], gateway=doc["gateway"], tz=doc["timezone"], start=doc["period"]["start_local"], end=doc["period"]["end_local"], gen=local(doc["generated_at"])))}</p>',
           f'<section id="summary"><h2>{t("summary")}</h2>'
           f'<p class="summary">{_e(s["text"]["zh" if k == 0 else "en"])}</p>'
           '<table class="kpi"><tr>' + "".join(f"<th>{t(x)}</th>" for x in (
               "k_episodes", "k_highest", "k_faults", "k_online", "k_complete", "k_manual",
               "k_running")) + "</tr><tr>"
           f'<td>{s["safety_episodes"]}</td><td>{lv(s["highest_level"])}</td>'
           f'<td>{_n(s["fault_hours"], 1)}</td><td>{_pct(s["online_rate_min"])}</td>'
           f'<td>{_pct(s["completeness"])}</td><td>{s["manual_readings"]}</td>'
           f'<td>{_pct(doc["gateway_running"]["fraction"])}</td></tr></table></section>']
    # items, their points, and plots (points with alerts first when they must be rationed)
    ranked = sorted(doc["points"], key=lambda p: (-p["safety_episodes"], -p["fault_hours"]))
    plotted = {p["point"] for p in ranked[:max_plots]}
    out.append(f'<section id="items"><h2>{t("items")}</h2>')
    for item in doc["items"]:
        pts = [p for p in doc["points"] if p["quantity"] == item["quantity"]]
        out.append(f'<h3>{_e(item["name"]["zh" if k == 0 else "en"])} ({_e(item["quantity"])})'
                   f" — {lv(item['highest_level'])}</h3>")
        out.append("<table><tr>" + "".join(f'<th{" class=l" if x == "point" else ""}>{t(x)}</th>'
                                            for x in ("point", "unit", "min", "max", "mean",
                                                      "change", "trend", "complete", "level",
                                                      "exceed")) + "</tr>")
        for p in pts:
            ex = ", ".join(f"{_e(LEVEL.get(n.split('_')[-1], (n, n))[k])} "
                           f"{v['episodes']}/{_n(v['seconds'] / 3600, 1)}"
                           for n, v in p["exceedances"].items())
            out.append(f'<tr><td class="l">{_e(p["point"])}</td><td>{_e(p["unit"])}</td>'
                       f'<td>{_n(p["min"])}</td><td>{_n(p["max"])}</td><td>{_n(p["mean"])}</td>'
                       f'<td>{_n(p["change"])}</td><td>{_n(p["trend_per_day"], 4)}</td>'
                       f'<td>{_pct(p["completeness"])}</td><td>{lv(p["highest_level"])}</td>'
                       f'<td class="l">{ex or "—"}</td></tr>')
        out.append("</table>")
        for p in pts:
            if p["samples"] == 0:
                out.append(f'<p class="meta">{_e(p["point"])}: {t("no_data")}</p>')
                continue
            if p["point"] not in plotted:
                out.append(f'<p class="meta">{_e(p["point"])}: {t("plot_omitted")}</p>')
                continue
            ser = source.series(p["point"], a, b)
            uri = point_plot(p, ser.start, ser.min, ser.max, ser.mean,
                             [e for e in doc["episodes"] if e["point"] == p["point"]],
                             [f for f in doc["faults"] if f["point"] == p["point"]],
                             doc["manual_readings"], a, b, tz, lang)
            out.append(f'<figure><img class="plot" alt="{_e(t("plot_alt", point=p["point"]))}" '
                       f'src="{uri}"><figcaption>{_e(p["point"])} {_e(p["description"])}'
                       f"</figcaption></figure>")
    out.append("</section>")
    out.append(_episodes(doc, t, lv, local, k))
    out.append(_faults(doc, t, local))
    out.append(f'<section id="devices"><h2>{t("devices")}</h2><table><tr><th class=l>'
               f'{t("device")}</th><th>{t("online_h")}</th><th>{t("online_rate")}</th>'
               f'<th>{t("offline_n")}</th></tr>' + "".join(
                   f'<tr><td class="l">{_e(d["device"])}</td><td>{_n(d["online_s"] / 3600, 1)}'
                   f'</td><td>{_pct(d["online_rate"])}</td><td>{d["offline_episodes"]}</td></tr>'
                   for d in doc["devices"]) + "</table></section>")
    out.append(_manual(doc, t, lv, local, k))
    out.append(f'<p class="foot">{t("method")} schema {_e(doc["schema"])}</p></body></html>')
    return "\n".join(out)


def _episodes(doc: dict, t, lv, local, k: int) -> str:
    rows = [f'<section id="episodes"><h2>{t("episodes")}</h2><h3>{t("by_grade")}</h3>'
            f'<table><tr><th class=l>{t("grade")}</th><th>{t("g_episodes")}</th>'
            f'<th>{t("g_reached")}</th><th>{t("g_hours")}</th></tr>']
    for name, g in doc["summary"]["episodes_by_grade"].items():
        rows.append(f'<tr><td class="l">{lv(name)}</td><td>{g["episodes"]}</td>'
                    f'<td>{g["reached"]}</td><td>{_n(g["seconds"] / 3600, 2)}</td></tr>')
    rows.append("</table>")
    if not doc["episodes"]:
        return "".join(rows) + f'<p>{t("none_episodes")}</p></section>'
    rows.append("<table><tr>" + "".join(f'<th{" class=l" if x == "point" else ""}>{t(x)}</th>'
                                        for x in ("point", "source", "level", "raised",
                                                  "cleared", "duration", "acked", "ack_after",
                                                  "clear_after")) + "</tr>")
    for e in doc["episodes"]:
        acked = "—" if e["acknowledged_at"] is None else \
            f'{local(e["acknowledged_at"])} {_e(e["acknowledged_by"] or "")}'
        rows.append(
            f'<tr><td class="l">{_e(e["point"])}</td><td>{_e(SOURCE[e["source"]][k])}</td>'
            f'<td>{lv(e["highest_level"])}</td><td>{local(e["raised_at"])}</td>'
            f'<td>{local(e["cleared_at"]) if not e["open"] else t("open")}</td>'
            f'<td>{_n(e["duration_s"] / 3600, 2)}</td><td>{acked}</td>'
            f'<td>{_n(e["ack_after_s"] / 60 if e["ack_after_s"] is not None else None, 1)}</td>'
            f'<td>{_n(e["cleared_after_s"] / 3600 if e["cleared_after_s"] is not None else None, 2)}'
            "</td></tr>")
    return "".join(rows) + "</table></section>"


def _faults(doc: dict, t, local) -> str:
    if not doc["faults"]:
        return f'<section id="faults"><h2>{t("faults")}</h2><p>{t("none_faults")}</p></section>'
    rows = [f'<section id="faults"><h2>{t("faults")}</h2><table><tr>' + "".join(
        f'<th{" class=l" if x in ("point", "device", "kind") else ""}>{t(x)}</th>'
        for x in ("point", "device", "kind", "raised", "cleared", "hours")) + "</tr>"]
    for f in doc["faults"]:
        rows.append(f'<tr><td class="l">{_e(f["point"])}</td><td class="l">{_e(f["device"])}</td>'
                    f'<td class="l">{_e(f["kind"])}</td><td>{local(f["raised_at"])}</td>'
                    f'<td>{local(f["cleared_at"]) if not f["open"] else t("open")}</td>'
                    f'<td>{_n(f["hours"], 2)}</td></tr>')
    return "".join(rows) + "</table></section>"


def _manual(doc: dict, t, lv, local, k: int) -> str:
    head = f'<section id="manual"><h2>{t("manual")}</h2>'
    if not doc["manual_readings"]:
        return head + f'<p>{t("none_manual")}</p></section>'
    rows = [head + "<table><tr>" + "".join(
        f'<th{" class=l" if x in ("point", "by", "note") else ""}>{t(x)}</th>'
        for x in ("at", "point", "value", "auto", "diff", "tol", "agrees", "level", "by",
                  "note")) + "</tr>"]
    for r in doc["manual_readings"]:
        agrees = "—" if r["agrees"] is None else t("yes" if r["agrees"] else "no")
        rows.append(f'<tr><td>{local(r["at"])}</td><td class="l">{_e(r["point"])}</td>'
                    f'<td>{_n(r["value"])} {_e(r["unit"])}</td><td>{_n(r["automatic"])}</td>'
                    f'<td>{_n(r["difference"])}</td><td>{_n(r["tolerance"])}</td>'
                    f'<td>{agrees}</td><td>{lv(r["level"]) if r["level"] else "—"}</td>'
                    f'<td class="l">{_e(r["by"])}</td><td class="l">{_e(r["note"] or r["error"])}'
                    "</td></tr>")
    return "".join(rows) + "</table></section>"
