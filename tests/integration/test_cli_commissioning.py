"""Commissioning commands against the simulator and a real broker: `device read` (every type and
word order side by side), `device test` (one poll with the profile) and `alerts test` (a test
alert with its own client id, reporting the broker's PUBACK reason code)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_sim.scenario import load_scenario
from tests.support.services import MqttRecorder, free_port, python_cli, wait_for_line
from tests.support.sites import ROOT, example_site


def minewatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def simulated_site(tmp_path: Path, mosquitto):
    scenario = load_scenario("rainstorm")
    port = free_port()
    cfg = example_site(tmp_path, modbus_port=port, mqtt_port=mosquitto.port)
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(cfg), "--listen", f"127.0.0.1:{port}", "--epoch",
                     str(scenario.epoch + 30 * 3600), "--anchor", str(time.time()),
                     log=tmp_path / "sim.log")
    wait_for_line(tmp_path / "sim.log", '"listening"')
    yield cfg, port, scenario
    sim.terminate()
    sim.wait(5)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_device_read_and_device_test(simulated_site) -> None:
    cfg, port, scenario = simulated_site
    out = minewatch("device", "read", "--tcp", f"127.0.0.1:{port}", "--unit", "2", "--address",
                    "100", "--count", "2", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    freq = rows[0]["raw"] * 0.1  # VW frequency in 0.1 Hz
    assert 1000 < freq < 4000 and rows[0]["address"] == 100
    assert {"uint16 ABCD", "int32 CDAB", "float32 DCBA"} <= set(rows[0]["decoded"])

    out = minewatch("device", "test", "radar_wl1", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    (point,) = json.loads(out.stdout)["points"]
    t = scenario.epoch + 30 * 3600
    assert point["quality"] == "good" and point["unit"] == "m"
    assert abs(point["value"] - float(scenario.signals["WL-01"].truth(30 * 3600))) < 0.1
    assert abs(point["value"] - float(scenario.value("WL-01", t))) < 0.1

    bad = minewatch("device", "read", "--tcp", f"127.0.0.1:{port}", "--unit", "1",
                    "--address", "40000", "--count", "2")
    assert bad.returncode == 1 and "exception 2" in bad.stderr  # illegal data address, named


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_alerts_test_reports_the_puback(tmp_path: Path, mosquitto) -> None:
    cfg = example_site(tmp_path, modbus_port=free_port(), mqtt_port=mosquitto.port)
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    try:
        out = minewatch("alerts", "test", "--config", str(cfg), "--json")
        time.sleep(0.5)
    finally:
        recorder.close()
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and report["reason_code"] < 0x80
    (alert,) = recorder.on("alert")
    assert alert["test"] is True and alert["event_id"] == report["event_id"]
    assert recorder.on("status") == []  # never the daemon's session, status or will
