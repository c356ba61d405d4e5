"""The daemon as systemd runs it: readiness and watchdog over $NOTIFY_SOCKET, SIGHUP reloads that
never replace a good config with a bad one, and a clean SIGTERM."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from firmware_sim.scenario import load_scenario
from tests.support.services import MqttRecorder, free_port, python_cli, wait_for_line
from tests.support.sites import example_site

NEW_POINT = """
[[points]]
name = "WL-02"
description = "second reading of the radar, against the spillway datum"
quantity = "water_level"
device = "radar_wl1"
channel = "empty_height"
conversion = { kind = "radar_level", mount_elevation = 1262.5 }
thresholds = { direction = "upper", blue = 1253.5, yellow = 1254.5, orange = 1255.5, red = 1256.5 }
"""


def _wl02_counts(recorder: MqttRecorder) -> list[int]:
    return [p["count"] for m in recorder.on("telemetry") if m["kind"] == "stats"
            for p in m["points"] if p["point"] == "WL-02"]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_sd_notify_sighup_reload_and_sigterm(tmp_path: Path, mosquitto, monkeypatch) -> None:
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.1)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")

    scenario = load_scenario("rainstorm")
    sim_port = free_port()
    http_port = free_port()
    cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=mosquitto.port,
                       replace={'abnormal_period = "5min"': 'abnormal_period = "10min"'},
                       listen=f"127.0.0.1:{http_port}")
    good = cfg.read_text()
    clock = ["--epoch", str(scenario.epoch), "--time-scale", "600", "--anchor", str(time.time())]
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(cfg), "--listen", f"127.0.0.1:{sim_port}", *clock,
                     log=tmp_path / "sim.log")
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    log = tmp_path / "gateway.log"
    gw = python_cli("gateway.cli", "run", "--config", str(cfg), *clock, log=log)
    messages: list[str] = []

    def drain_notify(until: float) -> None:
        while time.monotonic() < until:
            with contextlib.suppress(TimeoutError):
                messages.append(notify.recv(4096).decode())

    try:
        wait_for_line(log, '"started"', timeout=30)
        drain_notify(time.monotonic() + 2.5)
        assert any(m.startswith("READY=1") for m in messages)
        assert messages.count("WATCHDOG=1") >= 3  # every half of WATCHDOG_USEC

        # the local endpoint: Prometheus metrics and the status `minewatch status` prints
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert re.search(r'minewatch_polls_total\{device="radar_wl1"\} [1-9]', metrics)
        assert 'minewatch_outbox_depth{kind="events"}' in metrics
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "status", "--config", str(cfg),
                              "--json"], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        status = json.loads(out.stdout)
        assert status["devices_online"] == 2 and status["alerts"] == []

        # a broken file: rejected, named, and the gateway goes on with the old config
        cfg.write_text(good.replace("yellow = 1254.0", "yellow = 1257.0"))
        gw.send_signal(signal.SIGHUP)
        line = wait_for_line(log, "config reload rejected", timeout=10)
        assert str(cfg) in line and "points[0].thresholds.orange" in line
        assert gw.poll() is None

        # a good file with a new point: polled without a restart
        cfg.write_text(good + NEW_POINT)
        gw.send_signal(signal.SIGHUP)
        wait_for_line(log, "config reloaded", timeout=10)
        deadline = time.monotonic() + 20
        while not any(c > 0 for c in _wl02_counts(recorder)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(c > 0 for c in _wl02_counts(recorder)), "the new point is not polled"
        assert gw.poll() is None

        gw.send_signal(signal.SIGTERM)
        assert gw.wait(timeout=20) == 0
        drain_notify(time.monotonic() + 0.5)
        assert "STOPPING=1" in messages
    finally:
        if gw.poll() is None:
            gw.kill()
        sim.terminate()
        sim.wait(5)
        recorder.close()
        notify.close()
    assert recorder.on("status")[-1]["state"] == "offline"
    audits = [line for line in log.read_text().splitlines() if "audit_thresholds" in line]
    # the new point's thresholds are audit-logged; no existing point's thresholds changed
    assert len(audits) == 1 and '"point": "WL-02"' in audits[0]
