"""A month of history written the way the daemon writes it, for report tests that need no live run:
windows through `HistoryStore.add_window`, device states and runs through its recorder calls, and
alert-log events (an acknowledgement among them) through `Outbox.commit_events`, as the engine
and issue 17's `ack` command commit them."""

from __future__ import annotations

import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from gateway.alerts.encoder import EVENT_SCHEMA, time_fields
from gateway.config import load_site
from gateway.history.readings import Reading, finish_reading, insert_reading
from gateway.history.store import HistoryStore
from gateway.outbox import AlertState, Outbox
from gateway.report.period import parse_month
from tests.support.sites import ROOT

__all__ = ["site_in", "event", "synthetic_month", "JUNE"]

JUNE = "2026-06"
TZ = ZoneInfo("Asia/Shanghai")


def site_in(tmp: Path, text_replace: dict[str, str] | None = None):
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    text = text.replace('state_dir = "../../state/tailings_pond"', f'state_dir = "{tmp / "state"}"')
    for a, b in (text_replace or {}).items():
        text = text.replace(a, b)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "site.toml"
    path.write_text(text, encoding="utf-8")
    (tmp / "profiles").symlink_to(ROOT / "config" / "profiles")
    return load_site(path)


def event(alert_id: str, kind: str, state: str, level: str, point: str, t: float,
          since: float, **extra) -> dict:
    """An event as the engine commits it (the fields the report reads, and the schema's)."""
    return {"schema": EVENT_SCHEMA, "event_id": str(uuid.uuid4()), "alert_id": alert_id,
            "kind": kind, "state": state, "level": level, "point": point,
            "device": "radar_wl1" if point == "WL-01" else "vw_logger_a", "detector": "threshold",
            "since": int(since * 1000), **time_fields("observed_at", t, TZ), **extra}


def synthetic_month(tmp: Path):
    """June 2026 of the example pond: WL-01 rises through blue for a day (one episode, yellow
    for two hours, acknowledged 30 min after its raise), the radar is offline for 3 hours with
    a comm fault, a manual reading disagrees. Returns (cfg, month)."""
    cfg = site_in(tmp)
    month = parse_month(JUNE, TZ)
    a = month.start
    store = HistoryStore(cfg.history.path, cfg.history.max_bytes, tz=TZ)
    store.run_started(a - 600)
    names = [p.name for p in cfg.points]
    quantities = [p.quantity for p in cfg.points]
    units = [p.unit for p in cfg.points]
    day = 86400.0
    for k in range(int(month.seconds // 600)):  # 10-minute polls
        t = a + 600 * k
        wl = 1252.0 + (1.6 if 10 * day <= t - a < 11 * day else 0.0) + 0.0001 * k
        if 10 * day + 6 * 3600 <= t - a < 10 * day + 8 * 3600:
            wl = 1254.2  # yellow for two hours
        radar_down = 20 * day <= t - a < 20 * day + 3 * 3600
        count = np.array([0 if radar_down else 1, 1, 1])
        values = np.array([wl, 13.0 - 0.00001 * k, 14.0])
        store.add_window(t, names, quantities, units, count, np.ones(3), values, values, values,
                         np.array([5 if radar_down else 0, 0, 0], np.uint8))
    store.device_online("radar_wl1", a - 600, True)
    store.device_online("vw_logger_a", a - 600, True)
    store.device_online("radar_wl1", a + 20 * day, False)
    store.device_online("radar_wl1", a + 20 * day + 3 * 3600, True)
    store.run_seen(month.end + 600)
    store.run_stopped(month.end + 600)
    reading = Reading(str(uuid.uuid4()), "WL-01", 1252.5, a + 5 * day, "张工", "staff gauge",
                      "cli", a + 5 * day)
    store.later(lambda db: insert_reading(db, reading))
    store.later(finish_reading(reading.reading_id, "done", {
        "unit": "m", "level": "none", "comparison": {
            "manual": 1252.5, "automatic": 1252.07, "automatic_at": int((a + 5 * day) * 1000),
            "automatic_source": "window", "difference": 0.43, "tolerance": 0.05,
            "agrees": False}}, a + 5 * day))
    store.close()

    outbox = Outbox(cfg.outbox.path)
    alert = str(uuid.uuid4())
    raised = a + 10 * day
    topic = "minewatch/v1/130825-TP001/gw01/alert"
    for state, level, t, extra in (
            ("raised", "blue", raised, {}),
            ("escalated", "yellow", raised + 6 * 3600, {}),
            ("acknowledged", "yellow", raised + 1800, {"ack": {"by": "值班员李"}}),
            ("downgraded", "blue", raised + 8 * 3600, {}),
            ("cleared", "none", raised + day, {})):
        outbox.commit_events([(topic, event(alert, "safety", state, level, "WL-01", t, raised,
                                            **extra))],
                             [AlertState("safety/WL-01", 0, None, None)])
    fault = str(uuid.uuid4())
    down = a + 20 * day
    for state, t in (("raised", down + 1800), ("cleared", down + 3 * 3600)):
        outbox.commit_events([(topic.replace("alert", "fault"), event(
            fault, "fault", state, "none", "WL-01", t, down,
            fault={"quality": 5, "quality_name": "comm_fail", "duration_s": t - down,
                   "repair_limit_s": 604800.0, "stage": "open"}))], [])
    outbox.close()
    return cfg, month
