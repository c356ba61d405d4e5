"""The daemon through a step of its wall clock: `minewatch run` (the production clock) against the
rainstorm simulator and a real Mosquitto, its wall clock set back a day (tests/support/wall_step)
in the middle of an open alert while the broker is down. Polling and grading go on, the
escalation comes, every event arrives once in seq order, the log says from which time to which
the clock moved, the statistics window open at the step is closed and sent, and the history
store counts the running time on both sides of the step."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_sim.scenario import load_scenario
from tests.support.services import (
    Mosquitto,
    MqttRecorder,
    free_port,
    poll_until,
    require_binary,
    wait_for_line,
)
from tests.support.sites import ROOT, example_site

H = 3600.0
DAY = 86400.0


def _wait(what, timeout: float = 90.0):
    return poll_until(what, timeout, interval=0.2)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_daemon_grades_and_delivers_through_a_step_back_of_a_day(tmp_path: Path) -> None:
    broker = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mosquitto",
                       free_port(), persistent=True)
    broker.start()
    scenario = load_scenario("rainstorm")
    sim_port = free_port()
    cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=broker.port, replace={
        'period = "10min"': 'period = "1s"', 'abnormal_period = "5min"': 'abnormal_period = "1s"',
        'protocol = "5"': 'protocol = "5"\nreconnect_max = "2s"'})
    # the storm at 360 times real time from 23 h: blue at once, yellow (24.7 h) 17 s later; the
    # gateway runs on its own (production) clock
    sim = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim.cli", "serve", "--scenario", "rainstorm",
         "--site-config", str(cfg), "--listen", f"127.0.0.1:{sim_port}", "--epoch",
         str(scenario.epoch + 23 * H), "--time-scale", "360", "--anchor", str(time.time() + 2)],
        cwd=ROOT, stdout=open(tmp_path / "sim.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    recorder = gw = None
    try:
        wait_for_line(tmp_path / "sim.log", '"listening"')
        recorder = MqttRecorder(broker.port, "minewatch/v1/#")
        step_file = tmp_path / "wall_step"
        step_file.write_text("0")
        log = tmp_path / "gateway.log"
        gw = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)], cwd=ROOT,
            stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            env={**os.environ, "PYTHONUNBUFFERED": "1", "WALL_STEP_FILE": str(step_file),
                 "PYTHONPATH": str(ROOT / "tests" / "support" / "wall_step")})
        blue = _wait(lambda: [e for e in recorder.on("alert") if e["level"] == "blue"], 120)[0]
        broker.stop()
        step_file.write_text(str(-DAY))  # a bad NTP server sets the clock back a day
        wait_for_line(log, "clock_jump")
        time.sleep(3.0)
        broker.start()
        yellow = _wait(lambda: [e for e in recorder.on("alert") if e["level"] == "yellow"])[0]
        stats = _wait(lambda: [d for d in recorder.on("telemetry") if d["kind"] == "stats"])
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(60) == 0
        gw = None
        time.sleep(1.0)
    finally:
        if gw is not None:
            gw.kill()
        if recorder is not None:
            recorder.close()
        sim.terminate()
        sim.wait(5)
        broker.stop()
    text = log.read_text()
    [jump] = [json.loads(line) for line in text.splitlines() if '"clock_jump"' in line]
    assert jump["jump_s"] == pytest.approx(-DAY, abs=1.0) and jump["old"] > jump["new"]
    assert '"detector_time_kept"' in text
    # every event once, in seq order; the yellow carries the new (a day earlier) time
    events = recorder.on("alert") + recorder.on("fault")
    first = list({e["event_id"]: e for e in reversed(events)}.values())[::-1]
    assert [e["seq"] for e in first] == list(range(1, len(first) + 1))
    assert (yellow["state"], yellow["seq"]) == ("escalated", blue["seq"] + 1)
    assert yellow["observed_at"] < blue["observed_at"] - (DAY - 600) * 1000
    # the window open at the step was closed and sent, not left open until the clock came back
    assert stats[0]["window_start"] <= blue["observed_at"]
    with sqlite3.connect(tmp_path / "state" / "history.sqlite") as db:
        runs = db.execute("SELECT started, stopped FROM runs").fetchall()
    assert len(runs) == 2 and all(b > a for a, b in runs)
