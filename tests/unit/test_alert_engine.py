"""Alert engine over the real threshold detector: event names, ids, seq, restart, faults."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from detectors.base import Quality
from gateway.alerts.encoder import with_sent_at
from gateway.alerts.engine import AlertEngine
from gateway.config import load_site
from gateway.detect import DetectStage
from gateway.outbox import Outbox

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "config" / "schema" / "event.schema.json").read_text())
T0 = 1_784_476_800.0


@pytest.fixture
def site(tmp_path: Path):
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text.replace('state_dir = "../../state/tailings_pond"',
                                 f'state_dir = "{tmp_path / "state"}"'), encoding="utf-8")
    return load_site(path)


class Pipeline:
    def __init__(self, cfg):
        self.outbox = Outbox(cfg.outbox.path)
        self.engine = AlertEngine(cfg, self.outbox, "minewatch/v1")
        self.detect = DetectStage(cfg)
        self.events: list[dict] = []

    def feed(self, t: float, values, quality=None) -> list[dict]:
        from gateway.batch import Batch

        idx = np.arange(len(values), dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        quality = np.zeros(len(values), np.uint8) if quality is None else np.asarray(quality,
                                                                                     np.uint8)
        batch = Batch("d", t, idx, np.where(quality == 0, values, np.nan), quality)
        out = self.engine.process(t, idx, batch.values, quality, self.detect.process(batch))
        self.events.extend(out)
        return out


def _levels(events):
    return [(e["state"], e["level"]) for e in events]


def test_rise_and_fall_give_the_full_sequence_with_ids_and_seq(site) -> None:
    pipe = Pipeline(site)
    wl = np.concatenate([np.linspace(1252, 1256.3, 44), np.linspace(1256.3, 1251.5, 49)])
    for k, v in enumerate(wl):
        pipe.feed(T0 + 600 * k, [v, 13.0, 14.0])
    assert _levels(pipe.events) == [
        ("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange"), ("escalated", "red"),
        ("downgraded", "orange"), ("downgraded", "yellow"), ("downgraded", "blue"),
        ("cleared", "none")]
    assert len({e["alert_id"] for e in pipe.events}) == 1
    assert len({e["event_id"] for e in pipe.events}) == 8
    assert [e["seq"] for e in pipe.events] == list(range(1, 9))
    for e in pipe.events:
        jsonschema.validate(json.loads(with_sent_at(json.dumps(e).encode(), T0)), SCHEMA)
    red = pipe.events[3]
    assert red["threshold"] == 1256.0 and red["grade_roman"] == "I"
    assert "红色预警" in red["message"]["zh"] and "red warning" in red["message"]["en"]
    assert red["observed_at_local"].endswith(":00")  # local time string for people


def test_oscillation_around_a_threshold_gives_one_alert(site) -> None:
    pipe = Pipeline(site)
    # water level wobbling +-5 cm around blue (1253 m) for a day
    for k in range(144):
        pipe.feed(T0 + 600 * k, [1253.0 + (0.05 if k % 2 else -0.05), 13.0, 14.0])
    assert _levels(pipe.events) == [("raised", "blue")]


def test_lower_direction_point_raises_on_low_values(site) -> None:
    pipe = Pipeline(site)
    for k in range(5):
        pipe.feed(T0 + 600 * k, [1251.0, 7.9, 14.0])  # phreatic line 7.9 m deep: below red 8 m
    (ev,) = pipe.events
    assert (ev["point"], ev["state"], ev["level"]) == ("JRX-01", "raised", "red")


def test_restart_continues_the_open_episode(site) -> None:
    pipe = Pipeline(site)
    for k in range(4):
        pipe.feed(T0 + 600 * k, [1254.2, 13.0, 14.0])
    (raised,) = pipe.events
    pipe.detect.checkpoint = site.gateway.state_dir / "detectors.npz"
    pipe.detect.save()
    pipe.outbox.close()
    again = Pipeline(site)  # the gateway restarted
    again.detect = DetectStage(site, site.gateway.state_dir / "detectors.npz")
    for k in range(4, 10):
        again.feed(T0 + 600 * k, [1251.0, 13.0, 14.0])
    (cleared,) = again.events
    assert cleared["state"] == "cleared" and cleared["alert_id"] == raised["alert_id"]
    assert cleared["seq"] == raised["seq"] + 1


def test_comm_failure_is_a_fault_event_never_a_colour(site) -> None:
    pipe = Pipeline(site)
    bad = [Quality.COMM_FAIL] * 3
    for k in range(3):
        pipe.feed(T0 + 600 * k, [np.nan] * 3, bad)
    assert {(e["kind"], e["state"], e["level"]) for e in pipe.events} == {("fault", "raised", "none")}
    assert len(pipe.events) == 3 and pipe.events[0]["fault"]["quality_name"] == "comm_fail"
    pipe.events.clear()
    pipe.feed(T0 + 600 * 10, [1251.0, 13.0, 14.0])
    assert [e["state"] for e in pipe.events] == ["cleared"] * 3
    assert pipe.events[0]["fault"]["duration_s"] == pytest.approx(6000.0)
    for e in pipe.events:
        jsonschema.validate(json.loads(with_sent_at(json.dumps(e).encode(), T0)), SCHEMA)


def test_dead_sensor_does_not_clear_an_alarm(site) -> None:
    pipe = Pipeline(site)
    for k in range(3):
        pipe.feed(T0 + 600 * k, [1256.5, 13.0, 14.0])
    for k in range(3, 10):
        pipe.feed(T0 + 600 * k, [np.nan, 13.0, 14.0], [Quality.COMM_FAIL, 0, 0])
    safety = [e for e in pipe.events if e["kind"] == "safety"]
    assert _levels(safety) == [("raised", "red")]
