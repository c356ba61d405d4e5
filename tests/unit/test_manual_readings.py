"""Manual readings: refused with the reason, graded by the point's thresholds, compared with the
automatic value, published through the outbox, stored, and their episodes carried over a
restart; the CLI's path through the history store to the running gateway."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gateway.alerts.encoder import time_fields
from gateway.batch import Batch
from gateway.cli import main
from gateway.clock import SimClock
from gateway.manual.grade import grade_reading
from gateway.manual.validate import ReadingError, check_reading, point_range
from tests.support.history import site_in
from tests.support.sites import ROOT

T0 = 1_784_476_800.0  # 2026-07-20 00:00 +08:00


def _schema(name: str) -> dict:
    return json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())


@pytest.fixture
def cfg(tmp_path: Path):
    return site_in(tmp_path)


def test_a_reading_is_refused_with_the_argument_and_the_reason(cfg) -> None:
    def refused(**kw) -> ReadingError:
        args = {"point": "WL-01", "value": 1252.0, "at": T0, "by": "张工", "note": None,
                "now": T0, "source": "cli", **kw}
        with pytest.raises(ReadingError) as exc:
            check_reading(cfg, **args)
        return exc.value

    e = refused(point="wl-01")
    assert e.key == "point" and "did you mean WL-01?" in e.en and "是否为 WL-01" in e.zh
    # the radar's measuring range (0.15 to 30 m of empty height below a 1262 m mount)
    assert point_range(cfg, cfg.points[0]) == pytest.approx((1232.0, 1261.85))
    e = refused(value=1300.0)
    assert e.key == "value" and "outside WL-01's range [1232, 1261.85] m" in e.en
    assert refused(value="twelve").key == "value"
    assert refused(value=float("nan")).key == "value"
    assert refused(at=T0 + 3600).key == "at"  # ahead of the gateway's clock
    assert refused(at=T0 - 400 * 86400, oldest=T0 - 396 * 86400).key == "at"
    assert refused(by="  ").key == "by"
    assert refused(note="x" * 501).key == "note"
    ok = check_reading(cfg, "JRX-01", "12.41", T0, "张工", " dip meter ", T0, "cli")
    assert (ok.value, ok.note, ok.point) == (12.41, "dip meter", "JRX-01")


def test_a_reading_is_graded_by_the_points_own_thresholds_at_once(cfg) -> None:
    levels = [grade_reading(cfg, 0, v, T0).level for v in (1252.9, 1253.0, 1254.5, 1256.2)]
    assert levels == [0, 1, 2, 4]  # no debounce: a person's reading is one measurement
    g = grade_reading(cfg, 1, 10.5, T0)  # phreatic depth: lower is worse
    assert g.level == 1 and g.threshold == 11.0


def _gateway(cfg):
    from gateway.daemon import Gateway

    return Gateway(cfg, SimClock(T0 + 3600, 1.0, anchor=None))


def _close(gw) -> None:
    gw.history.stop(gw.clock.now())
    gw.outbox.close()


def _records(cfg, topic_end: str) -> list[dict]:
    db = sqlite3.connect(cfg.outbox.path)
    rows = [json.loads(p) for t, p in db.execute("SELECT topic, payload FROM outbox ORDER BY id")
            if t.endswith(topic_end)]
    db.close()
    return rows


def test_graded_compared_published_stored_and_carried_over_a_restart(cfg) -> None:
    gw = _gateway(cfg)
    wl = np.array([0], np.int64)
    gw.on_batch(Batch("radar_wl1", T0 + 600, wl, np.array([1251.20]), np.zeros(1, np.uint8)))
    agree = gw.add_reading("WL-01", 1251.23, at=T0 + 660, by="张工")
    assert agree["level"] == "none" and agree["events"] == []
    assert agree["comparison"]["agrees"] is True and agree["comparison"]["automatic"] == 1251.2
    off = gw.add_reading("WL-01", "1253.5", at=T0 + 720, by="张工", note="staff gauge")
    assert off["level"] == "blue" and off["comparison"]["agrees"] is False
    assert off["comparison"]["difference"] == pytest.approx(2.3)
    assert [(e["kind"], e["state"], e["level"]) for e in off["events"]] == [
        ("safety", "raised", "blue"), ("fault", "raised", "none")]
    with pytest.raises(ReadingError):
        gw.add_reading("NOPE", 1.0, by="张工")
    # published: the readings as telemetry (quality 6) and their events, all schema-valid
    manual = _records(cfg, "/telemetry")
    assert [m["points"][0]["value"] for m in manual] == [1251.23, 1253.5]
    for m in manual:
        jsonschema.validate(m, _schema("telemetry"))
    events = [e for e in gw.outbox.alert_log() if e.get("reading")]
    assert [e["detector"] for e in events] == ["manual", "comparison"]
    for e in events:  # as sent: stamped with sent_at, without the log's delivery columns
        sent = {k: v for k, v in e.items() if k not in ("delivered_at", "confirmed_at")}
        jsonschema.validate({**sent, **time_fields("sent_at", T0)}, _schema("event"))
    assert events[1]["fault"]["condition"] == "comparison" and events[0]["reading"]["quality"] == 6
    assert {a.get("condition") for a in gw.engine.active()} == {None, "comparison"}
    _close(gw)
    # stored with its result, for the report
    db = sqlite3.connect(cfg.history.path)
    rows = db.execute("SELECT state, result FROM readings ORDER BY at").fetchall()
    assert [r[0] for r in rows] == ["done", "done"]
    assert json.loads(rows[1][1])["comparison"]["agrees"] is False
    db.close()
    # a restart continues both episodes; the next reading that agrees ends them
    gw = _gateway(cfg)
    gw.on_batch(Batch("radar_wl1", T0 + 1200, wl, np.array([1251.21]), np.zeros(1, np.uint8)))
    back = gw.add_reading("WL-01", 1251.22, at=T0 + 1260, by="李工")
    assert [(e["kind"], e["state"]) for e in back["events"]] == [("safety", "cleared"),
                                                                 ("fault", "cleared")]
    assert {e["alert_id"] for e in back["events"]} == {e["alert_id"] for e in off["events"]}
    _close(gw)


def test_a_reading_without_an_automatic_value_nearby_is_stored_uncompared(cfg) -> None:
    gw = _gateway(cfg)
    r = gw.add_reading("JRX-01", 12.4, at=T0, by="张工")
    assert r["comparison"] is None and r["events"] == []
    _close(gw)


def test_the_cli_stores_the_reading_and_the_running_gateway_takes_it(cfg, capsys) -> None:
    assert main(["reading", "add", "--config", str(cfg.path), "--point", "JRX-02", "--value",
                 "13.9", "--at", "2026-07-20T00:30", "--by", "张工", "--wait", "0.3",
                 "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "stored the manual reading JRX-02 = 13.9 m (by 张工, 2026-07-20 00:30:00)" in out
    assert "did not take it within 0.3 s" in out and "grade by the site's thresholds: none" in out
    assert main(["reading", "add", "--config", str(cfg.path), "--point", "JRX-02", "--value",
                 "-5000", "--by", "张工", "--lang", "zh"]) == 2
    assert "超出该测点的量程" in capsys.readouterr().err
    gw = _gateway(cfg)
    health = gw.health(gw.clock.now())  # the heartbeat says a reading waits
    jsonschema.validate(health, _schema("health"))
    assert health["history"]["pending_readings"] == 1
    gw.manual.tick()  # the loop's once-a-second look at pending readings
    gw.history.store.flush()
    from gateway.history.readings import reading_state

    db = sqlite3.connect(cfg.history.path)
    (rid,) = db.execute("SELECT reading_id FROM readings").fetchone()
    db.close()
    state, result = reading_state(cfg.history.path, rid)
    assert state == "done" and result["source"] == "cli" and result["at"] == (T0 + 1800) * 1000
    assert [m["reading"]["source"] for m in _records(cfg, "/telemetry")] == ["cli"]
    _close(gw)


def test_the_influx_sink_writes_a_manual_reading_as_its_own_series(tmp_path: Path) -> None:
    from gateway.state_dir import StorageGuard
    from gateway.storage.influx import InfluxSink

    cfg = site_in(tmp_path, {'# [storage.influx]\n# url = "http://127.0.0.1:8428"':
                             '[storage.influx]\nurl = "http://127.0.0.1:8428"'})
    sink = InfluxSink(cfg, cfg.influx, StorageGuard(tmp_path))
    sink.add_manual(0, T0, 1253.4)
    chunk = sink.spool.peek(10)
    assert chunk.body.decode() == ("reading,device=radar_wl1,gateway=gw01,point=WL-01,"
                                   "quantity=water_level,site=130825-TP001,source=manual "
                                   f"value=1253.4,quality=6i {int(T0 * 1000)}")
    sink.spool.close()
