"""Every figure of a monthly report, as one JSON-ready document (`config/schema/report.schema.json`).

`monthly_figures(cfg, month)` reads the history store and the alert log (`source.py`), point by
point so a large site never holds a month of every point at once, and returns the document that
`minewatch report monthly --json` prints, the HTML renders and the daemon publishes. It imports
no plotting library.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter

from gateway.alerts.encoder import time_fields
from gateway.config.model import Point, SiteConfig
from gateway.config.quantities import QUANTITIES
from gateway.report.coverage import offline_episodes, online_seconds, running_seconds
from gateway.report.episodes import LEVELS, episodes
from gateway.report.period import Month
from gateway.report.series import point_figures
from gateway.report.source import ReportSource
from gateway.report.summary import summary_text

__all__ = ["monthly_figures", "REPORT_SCHEMA", "point_levels", "point_period"]

REPORT_SCHEMA = "minewatch/report/1"


def point_levels(p: Point) -> dict[str, tuple[str, float]]:
    """The set levels of a point: name -> (side, threshold); both-sided points name them
    `upper_blue`, `lower_blue` …"""
    th = p.thresholds
    out: dict[str, tuple[str, float]] = {}
    if th is None:
        return out
    for side, ls in (("upper", th.upper), ("lower", th.lower)):
        if ls is None:
            continue
        for name, v in zip(LEVELS[1:], ls.thresholds, strict=True):
            if v == v:
                out[f"{side}_{name}" if th.direction == "both" else name] = (side, float(v))
    return out


def point_period(cfg: SiteConfig, p: Point) -> float:
    """The normal poll period behind a point (a formula's: its fastest input's)."""
    if p.device:
        return cfg.device(p.device).period
    names = p.formula.inputs if p.formula else ()
    periods = [point_period(cfg, q) for q in cfg.points if q.name in names and q.device]
    return min(periods, default=0.0)


def _thresholds(p: Point) -> dict | None:
    th = p.thresholds
    if th is None:
        return None
    def side(ls):
        return None if ls is None else [v if v == v else None for v in ls.thresholds]
    return {"direction": th.direction, "upper": side(th.upper), "lower": side(th.lower),
            "derived": th.derived}


def _readings(rows: list[dict], month: Month) -> list[dict]:
    out = []
    for r in rows:
        res = r["result"] or {}
        c = res.get("comparison") or {}
        out.append({"reading_id": r["reading_id"], "point": r["point"],
                    "unit": res.get("unit", ""), "value": r["value"],
                    **time_fields("at", r["at"], month.tz), "by": r["by"], "note": r["note"],
                    "source": r["source"], "state": r["state"], "level": res.get("level"),
                    "automatic": c.get("automatic"),
                    "automatic_at": c.get("automatic_at"),
                    "difference": c.get("difference"), "tolerance": c.get("tolerance"),
                    "agrees": c.get("agrees"),
                    "error": (res.get("error") or {}).get("en")})
    return out


def monthly_figures(cfg: SiteConfig, month: Month, source: ReportSource | None = None,
                    now: float | None = None) -> dict:
    own = source is None
    if source is None:
        hist = cfg.history.path if cfg.history else cfg.gateway.state_dir / "history.sqlite"
        source = ReportSource(hist, cfg.outbox.path)
    try:
        return _figures(cfg, month, source, time.time() if now is None else now)
    finally:
        if own:
            source.close()


def _figures(cfg: SiteConfig, month: Month, src: ReportSource, now: float) -> dict:
    a, b = month.start, month.end
    safety, faults = episodes(src.alert_rows(a, b), a, b)
    readings = _readings(src.readings(a, b), month)
    fault_h = Counter()
    fault_kind = Counter()
    for f in faults:
        fault_h[f["point"]] += f["hours"]
        fault_kind[f["kind"]] += f["hours"]
    points = []
    for p in cfg.points:
        fig = point_figures(src.series(p.name, a, b), point_levels(p), point_period(cfg, p), a, b)
        mine = [e for e in safety if e["point"] == p.name]
        points.append({
            "point": p.name, "quantity": p.quantity, "unit": p.unit, "device": p.device,
            "description": p.description, **fig, "thresholds": _thresholds(p),
            "highest_level": max((e["highest_level"] for e in mine), key=LEVELS.index,
                                 default="none"),
            "safety_episodes": len(mine), "fault_hours": round(fault_h.get(p.name, 0.0), 4),
            "manual_readings": sum(r["point"] == p.name and r["state"] == "done"
                                   for r in readings)})
    runs = src.runs(a, b)
    states = src.device_states(b)
    devices = []
    for d in cfg.devices:
        st = states.get(d.name, [])
        on = online_seconds(runs, st, a, b)
        devices.append({"device": d.name, "online_s": round(on, 3),
                        "online_rate": round(on / month.seconds, 6),
                        "offline_episodes": offline_episodes(runs, st, a, b)})
    items = []
    for q in dict.fromkeys(p.quantity for p in cfg.points):
        mine = [x for x in points if x["quantity"] == q]
        info = QUANTITIES.get(q)
        items.append({"quantity": q, "name": {"zh": info.zh if info else q,
                                              "en": info.en if info else q},
                      "unit": mine[0]["unit"], "points": [x["point"] for x in mine],
                      "highest_level": max((x["highest_level"] for x in mine), key=LEVELS.index),
                      "safety_episodes": sum(x["safety_episodes"] for x in mine)})
    by_grade = {}
    for k, name in enumerate(LEVELS[1:], start=1):
        by_grade[name] = {
            "episodes": sum(e["highest_level"] == name for e in safety),
            "reached": sum(LEVELS.index(e["highest_level"]) >= k for e in safety),
            "seconds": round(sum(e["seconds_at_or_above"][name] for e in safety), 3)}
    acks = [e["ack_after_s"] for e in safety if e["ack_after_s"] is not None]
    clears = [e["cleared_after_s"] for e in safety if e["cleared_after_s"] is not None]
    rates = [d["online_rate"] for d in devices]
    comp = [x["completeness"] for x in points if x["completeness"] is not None]
    running = running_seconds(runs, a, b)
    summary = {
        "points": len(points), "devices": len(devices),
        "highest_level": max((e["highest_level"] for e in safety), key=LEVELS.index,
                             default="none"),
        "safety_episodes": len(safety),
        "manual_episodes": sum(e["source"] == "manual" for e in safety),
        "episodes_by_grade": by_grade,
        "acknowledged": len(acks), "unacknowledged": len(safety) - len(acks),
        "median_ack_s": statistics.median(acks) if acks else None,
        "median_clear_s": statistics.median(clears) if clears else None,
        "fault_episodes": len(faults),
        "fault_hours": round(sum(f["hours"] for f in faults), 4),
        "online_rate_min": min(rates) if rates else None,
        "online_rate_mean": round(statistics.fmean(rates), 6) if rates else None,
        "completeness": round(statistics.fmean(comp), 6) if comp else None,
        "manual_readings": sum(r["state"] == "done" for r in readings),
        "comparison_faults": sum(f["kind"] == "comparison" for f in faults),
    }
    doc = {
        "schema": REPORT_SCHEMA, "site": cfg.site.code, "site_name": cfg.site.name,
        "site_kind": cfg.site.kind, "gateway": cfg.gateway.id, "timezone": cfg.site.timezone,
        "month": month.label,
        "period": {"start": int(a * 1000), "end": int(b * 1000), "start_local": month.local(a),
                   "end_local": month.local(b), "seconds": month.seconds},
        **time_fields("generated_at", now),
        "gateway_running": {"seconds": round(running, 3),
                            "fraction": round(running / month.seconds, 6)},
        "summary": summary, "items": items, "points": points, "episodes": safety,
        "faults": faults,
        "fault_hours": {"total": summary["fault_hours"],
                        "by_point": {k: round(v, 4) for k, v in sorted(fault_h.items())},
                        "by_kind": {k: round(v, 4) for k, v in sorted(fault_kind.items())}},
        "devices": devices, "manual_readings": readings,
    }
    summary["text"] = summary_text(doc)
    return doc
