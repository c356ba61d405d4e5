"""End to end: simulated sensors -> Modbus TCP -> gateway -> real Mosquitto -> the platform.

The rainstorm scenario raises the reservoir through every warning level and lets it recede; the
platform must receive exactly raised(blue), escalated(yellow, orange, red), downgraded(orange,
yellow, blue), cleared: one alert_id, unique event_ids, seq without gaps, every payload valid
against the published schema, and each event within its debounce of the moment the scenario's
own truth crosses the threshold (or restore level).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from firmware_sim.scenario import load_scenario
from tests.support.services import MqttRecorder, free_port, play_scenario
from tests.support.sites import ROOT, example_site

SCALE = 6000.0  # 10 min polls -> 100 ms of real time: the clock's cap
PERIOD = 600.0
THRESHOLDS = (1253.0, 1254.0, 1255.0, 1256.0)
RESTORE = tuple(t - 0.25 for t in THRESHOLDS)  # 2 % capped at a quarter of the 1 m level gap
EXPECTED = [
    ("raised", "blue", "none"), ("escalated", "yellow", "blue"), ("escalated", "orange", "yellow"),
    ("escalated", "red", "orange"), ("downgraded", "orange", "red"),
    ("downgraded", "yellow", "orange"), ("downgraded", "blue", "yellow"),
    ("cleared", "none", "blue"),
]


def _schema(name: str) -> dict:
    return json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())


def _crossings(scenario, key: str, level: float, rising: bool) -> float:
    """First epoch time at which the scenario's true value crosses `level`."""
    tau = np.arange(0.0, scenario.duration, scenario.tick)
    truth = scenario.signals[key].truth(tau)
    hit = np.flatnonzero(truth >= level) if rising else np.flatnonzero(
        (truth < level) & (tau > tau[np.argmax(truth)]))
    assert hit.size, f"the scenario never crosses {level}"
    return scenario.epoch + tau[hit[0]]


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_rainstorm_alert_sequence(tmp_path: Path, mosquitto) -> None:
    scenario = load_scenario("rainstorm")
    sim_port = free_port()
    # the test pins the detector set and the poll period, so later detectors and the adaptive
    # period do not change the sequence it asserts
    cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=mosquitto.port,
                       replace={'abnormal_period = "5min"': 'abnormal_period = "10min"',
                                "\nthresholds = {": '\ndetectors = ["threshold"]\nthresholds = {'})
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    play_scenario(tmp_path, scenario, cfg, sim_port, recorder, SCALE, timeout=200)

    alerts = recorder.on("alert")
    log_tail = (tmp_path / "gateway.log").read_text()[-3000:]
    got = [(a["state"], a["level"], a["prev_level"]) for a in alerts]
    assert got == EXPECTED, log_tail
    schema = _schema("event")
    for a in alerts:
        jsonschema.validate(a, schema)
        assert a["point"] == "WL-01" and a["kind"] == "safety" and a["detector"] == "threshold"
        assert a["site"] == "130825-TP001" and a["gateway"] == "gw01"
    assert len({a["alert_id"] for a in alerts}) == 1
    assert len({a["event_id"] for a in alerts}) == len(alerts)
    assert [a["seq"] for a in alerts] == list(range(1, len(alerts) + 1))
    assert [a["grade_roman"] for a in alerts[:4]] == ["IV", "III", "II", "I"]

    # timing against the scenario's own truth: raise within the debounce (3 samples; red at once)
    for k, level in enumerate(THRESHOLDS):
        t_cross = _crossings(scenario, "WL-01", level, rising=True)
        lag = alerts[k]["observed_at"] / 1000 - t_cross
        allowed = (1 if k == 3 else 3) * PERIOD + PERIOD
        assert -PERIOD <= lag <= allowed, (k, lag)
    for k, level in zip(range(4, 8), reversed(RESTORE), strict=True):
        t_cross = _crossings(scenario, "WL-01", level, rising=False)
        lag = alerts[k]["observed_at"] / 1000 - t_cross
        assert -PERIOD <= lag <= 4 * PERIOD, (k, lag)

    stats = [m for m in recorder.on("telemetry") if m["kind"] == "stats"]
    assert len(stats) > 100  # 72 h of 5-minute windows, less start-up
    for m in stats[:5] + recorder.on("health")[:5]:
        jsonschema.validate(m, _schema("telemetry" if "points" in m else "health"))
    wl = [p for m in stats for p in m["points"] if p["point"] == "WL-01" and p["count"]]
    assert max(p["max"] for p in wl) == pytest.approx(1256.4, abs=0.05)
    assert recorder.on("health") and recorder.on("health")[-1]["devices_online"] == 2

    status = recorder.on("status")
    for s in status:
        jsonschema.validate(s, _schema("status"))
    assert status[0]["state"] == "online" and status[-1]["state"] == "offline"
