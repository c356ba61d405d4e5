"""Maintenance windows over the real gateway pipeline: a point in maintenance is polled and
reported with a flag, raises no safety alert, has its faults recorded and never escalated, and
comes out of maintenance by itself with the level it has then."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gateway.alerts.encoder import with_sent_at
from gateway.batch import Batch
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.encodings.decode import decode
from gateway.maintenance import Maintenance

ROOT = Path(__file__).resolve().parent.parent.parent
EVENT = json.loads((ROOT / "config" / "schema" / "event.schema.json").read_text())
COMPACT = json.loads((ROOT / "config" / "schema" / "telemetry-compact.schema.json").read_text())
T0 = 1_784_476_800.0
DAY = 86400.0


@pytest.fixture
def gw(tmp_path: Path):
    from gateway.daemon import Gateway

    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text.replace('state_dir = "../../state/tailings_pond"',
                                 f'state_dir = "{tmp_path / "state"}"')
                    + '\n[commands]\nenabled = true\n', encoding="utf-8")
    gw = Gateway(load_site(path), SimClock(T0, 1.0))
    yield gw
    gw.outbox.close()


def _radar(gw, t: float, wl: float, quality: int = 0) -> None:
    gw.on_batch(Batch("radar_wl1", t, np.array([0], np.int64),
                      np.array([wl if quality == 0 else np.nan]), np.array([quality], np.uint8)))


def _events(gw) -> list[tuple[str, str, str]]:
    return [(e["kind"], e["state"], e["level"]) for e in gw.outbox.alert_log()]


def test_a_point_in_maintenance_raises_nothing_until_its_window_ends(gw) -> None:
    gw.maintenance.start(["point:WL-01"], T0, T0 + 3600, "张工", "radar cleaning", "c-1")
    for k in range(6):
        _radar(gw, T0 + 600 * k, 1256.5)  # red the whole time
    assert _events(gw) == []
    wire = [p for _, p in gw.telemetry.due(T0 + 3000)]
    for p in wire:  # the default encoding, compact JSON
        jsonschema.validate(json.loads(p), COMPACT)
    msgs = [decode(p) for p in wire]
    points = [p for m in msgs for p in m["points"] if p["point"] == "WL-01"]
    assert points and all(p["maintenance"] is True for p in points)
    status = gw.status_document(T0 + 3000)
    assert status["maintenance"][0]["point"] == "WL-01"
    assert status["maintenance"][0]["by"] == "张工"
    # the window ends by itself; the next sample publishes the level the detectors give then
    assert [w.subject for w in gw.maintenance.expire(T0 + 3600)] == ["point:WL-01"]
    gw.engine.maintenance_ended()
    _radar(gw, T0 + 3600, 1256.5)
    assert _events(gw) == [("safety", "raised", "red")]
    assert gw.outbox.alert_log()[-1]["observed_at"] == int((T0 + 3600) * 1000)
    assert gw.status_document(T0 + 3600)["maintenance"] == []


def test_a_device_in_maintenance_records_its_faults_and_never_escalates_them(gw) -> None:
    gw.maintenance.start(["device:radar_wl1"], T0, T0 + 8 * DAY, "张工", "replace the radar",
                         None)
    for k in range(9 * 8):  # comm_fail three times a day for eight days
        _radar(gw, T0 + k * DAY / 9, 0.0, quality=5)
    events = gw.outbox.alert_log()
    assert _events(gw) == [("fault", "raised", "none")]  # not escalated at 6 and 7 days
    fault = events[0]
    assert fault["maintenance"] == {"by": "张工", "reason": "replace the radar",
                                    "until": int((T0 + 8 * DAY) * 1000)}
    ev = {k: v for k, v in fault.items() if k not in ("delivered_at", "confirmed_at")}
    jsonschema.validate(json.loads(with_sent_at(json.dumps(ev).encode(), T0)), EVENT)


def test_windows_survive_a_restart_and_can_be_ended(gw) -> None:
    gw.maintenance.start(["device:vw_logger_a"], T0, T0 + DAY, "张工", "recalibration", "c-2")
    again = Maintenance(gw.outbox)
    again.bind(gw.cfg)
    held = again.held(np.array([0, 1, 2], np.int64), T0 + 10)
    assert held.tolist() == [False, True, True]  # JRX-01 and JRX-02 are on the logger
    assert again.end(["device:vw_logger_a"], T0 + 20, "ended by 张工")
    assert Maintenance(gw.outbox).windows == {}
