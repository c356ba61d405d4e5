"""The uplink never loses an alert: broker outage, broker ACL rejection, SIGKILL, a full outbox.

Each test runs a stretch of the rainstorm scenario (simulator and gateway as real processes, a
real Mosquitto) and compares what the platform received with what the gateway committed to its
permanent alert log: every committed event arrives, first arrivals in `seq` order with no gaps,
with its original `observed_at`.
"""

from __future__ import annotations

import json
import os
import random
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
    python_cli,
    require_binary,
    wait_for_line,
)
from tests.support.sites import ROOT, example_site

H = 3600.0


class Site:
    """Simulator + gateway on a shared simulated clock, starting `start_h` hours into the storm."""

    def __init__(self, tmp: Path, broker_port: int, scale: float, start_h: float,
                 replace: dict[str, str] | None = None, append: str = "",
                 listen: str = "off"):
        self.tmp = tmp
        self.scenario = load_scenario("rainstorm")
        self.scale = scale
        sim_port = free_port()
        self.cfg = example_site(tmp, modbus_port=sim_port, mqtt_port=broker_port, replace={
            'protocol = "5"': 'protocol = "5"\nreconnect_max = "2s"', **(replace or {})},
            listen=listen)
        if append:
            self.cfg.write_text(self.cfg.read_text() + append)
        self.anchor = time.time() + 3.0
        self.epoch = self.scenario.epoch + start_h * H
        self.clock = ["--epoch", str(self.epoch), "--time-scale", str(scale),
                      "--anchor", str(self.anchor)]
        self.sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm",
                              "--site-config", str(self.cfg), "--listen",
                              f"127.0.0.1:{sim_port}", *self.clock, log=tmp / "sim.log")
        wait_for_line(tmp / "sim.log", '"listening"')
        self.runs = 0
        self.gateways: list[subprocess.Popen] = []

    def real(self, hours: float) -> float:
        """Wall-clock time at which the simulated clock reads `hours` into the scenario."""
        return self.anchor + (self.scenario.epoch + hours * H - self.epoch) / self.scale

    def hours(self, epoch_ms: int) -> float:
        """Hours into the scenario of an epoch-millisecond timestamp."""
        return (epoch_ms / 1000 - self.scenario.epoch) / H

    def gateway(self, until_h: float) -> subprocess.Popen:
        self.runs += 1
        proc = python_cli("gateway.cli", "run", "--config", str(self.cfg), *self.clock,
                          "--until", str(self.scenario.epoch + until_h * H),
                          log=self.tmp / f"gateway-{self.runs}.log")
        self.gateways.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2500:] for p in sorted(self.tmp.glob("gateway-*.log")))

    def committed(self) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "alerts", "list", "--config",
                              str(self.cfg), "--json", "--limit", "1000"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def outbox(self) -> sqlite3.Connection:
        return sqlite3.connect(self.tmp / "state" / "outbox.sqlite")

    def close(self) -> None:
        """The simulator, and any gateway a failed assert left running."""
        for proc in self.gateways:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        self.sim.terminate()
        self.sim.wait(5)


def wait_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def first_arrivals(messages: list[dict]) -> list[dict]:
    seen, out = set(), []
    for m in messages:
        if m["event_id"] not in seen:
            seen.add(m["event_id"])
            out.append(m)
    return out


def assert_all_delivered(received: list[dict], committed: list[dict]) -> None:
    first = first_arrivals(received)
    assert [m["seq"] for m in first] == list(range(1, len(committed) + 1)), \
        [m["seq"] for m in first]
    by_id = {m["event_id"]: m for m in first}
    for c in committed:
        got = by_id[c["event_id"]]  # every committed event arrived ...
        assert got["observed_at"] == c["observed_at"]  # ... with its original timestamp
        assert got["seq"] == c["seq"] and c["delivered_at"] is not None


@pytest.fixture
def broker(tmp_path: Path):
    made: list[Mosquitto] = []

    def make(extra_conf: str = "", persistent: bool = False) -> Mosquitto:
        binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        b = Mosquitto(binary, tmp_path / "mosquitto", free_port(), extra_conf, persistent)
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_broker_outage_with_a_full_outbox_loses_no_alert(tmp_path: Path, broker) -> None:
    mqtt = broker(persistent=True)
    # a small outbox: the outage's telemetry overflows it, the alerts must not care
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=12.0,
                append="\n[outbox]\nmax_bytes = 30000\n")
    recorder = MqttRecorder(mqtt.port, "minewatch/v1/#")
    gw = site.gateway(until_h=46.0)
    try:
        wait_until(site.real(22.0))  # after blue (about 20.5 h), before yellow
        mqtt.stop()
        wait_until(site.real(37.0))  # yellow, orange and red are raised while the broker is down
        mqtt.start()
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        recorder.close()
    received = recorder.on("alert") + recorder.on("fault")
    committed = site.committed()
    assert [(c["state"], c["level"]) for c in committed][:4] == [
        ("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange"),
        ("escalated", "red")]
    assert_all_delivered(received, committed)
    outage = [m for m in first_arrivals(received) if 22.0 < site.hours(m["observed_at"]) < 37.0]
    assert len(outage) >= 3  # observed during the outage, delivered after it
    for m in outage:
        assert m["sent_at"] - m["observed_at"] > 1000 * 3600  # sent hours (simulated) later
    # telemetry: the outbox cap dropped the oldest windows of the outage, and said so
    stats = [m for m in recorder.on("telemetry") if m["kind"] == "stats"]
    starts = [site.hours(m["window_start"]) for m in stats]
    outage_windows = [h for h in starts if 22.5 < h < 36.5]
    assert outage_windows, "no telemetry of the outage was kept"
    assert min(outage_windows) > 30.0  # the oldest windows of the outage were dropped
    assert max(starts) > 45.0  # and telemetry flows again after it
    assert max(h["outbox"]["dropped_telemetry"] for h in recorder.on("health")) > 0
    with site.outbox() as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_acl_rejection_keeps_events_until_the_broker_allows_them(tmp_path: Path, broker) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite minewatch/v1/+/+/status\ntopic readwrite minewatch/v1/+/+/"
                   "telemetry\ntopic readwrite minewatch/v1/+/+/health\ntopic read #\n")
    mqtt = broker(extra_conf=f"acl_file {acl}\n")
    site = Site(tmp_path, mqtt.port, scale=6000.0, start_h=18.0,
                replace={'abnormal_period = "5min"': 'abnormal_period = "10min"'})
    recorder = MqttRecorder(mqtt.port, "minewatch/v1/#")
    gw = site.gateway(until_h=40.0)
    try:
        line = wait_for_line(tmp_path / "gateway-1.log", "Not authorized", timeout=60)
        assert "kept in the outbox" in line
        with site.outbox() as db:
            assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] >= 1
        assert recorder.on("alert") == []
        acl.write_text("topic readwrite minewatch/v1/#\n")
        mqtt.reload()
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        recorder.close()
    committed = site.committed()
    assert len(committed) >= 3
    assert_all_delivered(recorder.on("alert"), committed)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_sigkill_at_random_moments_loses_no_alert(tmp_path: Path, broker) -> None:
    mqtt = broker()
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=14.0)
    recorder = MqttRecorder(mqtt.port, "minewatch/v1/#")
    rng = random.Random(int(os.environ.get("MINEWATCH_KILL_SEED", "20260720")))
    gw = None
    try:
        for _ in range(10):
            gw = site.gateway(until_h=44.0)
            time.sleep(rng.uniform(1.5, 3.5))
            gw.send_signal(signal.SIGKILL)
            gw.wait(5)
        gw = site.gateway(until_h=44.0)  # the last run goes to the end of the stretch
        assert gw.wait(timeout=150) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw is not None and gw.poll() is None:
            gw.kill()
        site.close()
        recorder.close()
    assert site.runs == 11
    committed = site.committed()
    levels = [c["level"] for c in committed if c["kind"] == "safety"]
    assert "red" in levels  # the storm's peak was alerted despite the crashes
    assert_all_delivered(recorder.on("alert") + recorder.on("fault"), committed)
    with site.outbox() as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0
