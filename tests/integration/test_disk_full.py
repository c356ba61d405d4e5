"""A full disk stops nothing: the state directory fills up in the middle of the rainstorm.

The gateway's state directory is a tmpfs of a few MB that this test mounts (root needed; under
CI=true a missing root fails). Between blue and yellow a runaway writer fills the file system and
keeps it full, grabbing whatever room appears (so the reserve the outbox gives up is taken
again at once); after red it stops and its file is deleted. The platform (a real subscriber on
a real Mosquitto, answering with receipts) must still get every event in seq order with no gap,
the gateway process must stay up throughout, the log must name the full directory once, the
platform must be told by a storage fault event, and once the room is back everything held in
memory must reach the alert log. A gateway (re)started on a full disk runs and alerts too.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from tests.integration.test_uplink_durability import Site, first_arrivals, wait_until
from tests.support.services import MqttRecorder, free_port, wait_for_line
from tests.support.sites import ROOT

SCHEMAS = {name: json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())
           for name in ("event", "health")}


@pytest.fixture
def tiny_state_dir(tmp_path: Path):
    """tmp_path/state on its own 8 MB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        message = "mounting a tiny tmpfs for the state directory needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0750", "tmpfs", str(state)],
                   check=True)
    try:
        yield state
    finally:
        if subprocess.run(["umount", str(state)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(state)], check=False)


class RunawayWriter(threading.Thread):
    """Fills the file system and keeps it full: every byte that comes free is taken."""

    def __init__(self, directory: Path):
        super().__init__(daemon=True)
        self.path = directory / "runaway.log"
        self.done = threading.Event()
        self.full = threading.Event()

    def run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            while not self.done.is_set():
                for size in (1 << 16, 1 << 12):
                    try:
                        while os.write(fd, b"x" * size) == size and not self.done.is_set():
                            pass
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                self.full.set()
                time.sleep(0.01)
        finally:
            os.close(fd)

    def stop(self) -> None:
        self.done.set()
        self.join(5)
        self.path.unlink()


def truncate_wal(path: Path) -> None:
    db = sqlite3.connect(path, timeout=10)
    try:
        for _ in range(50):
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.02)
        raise AssertionError(f"{path}: the WAL could not be truncated")
    finally:
        db.close()


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_state_directory_fills_during_the_storm_and_nothing_is_lost(
        tmp_path: Path, tiny_state_dir: Path, mosquitto) -> None:
    http = free_port()
    site = Site(tmp_path, mosquitto.port, scale=3000.0, start_h=14.0,
                append="\n[outbox]\nreserve_bytes = 1048576\n", listen=f"127.0.0.1:{http}")
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    gw = site.gateway(until_h=56.0)
    writer = RunawayWriter(tiny_state_dir)
    try:
        wait_until(site.real(22.0))  # after blue (20 h), before yellow (24.7 h)
        assert gw.poll() is None, site.logs()
        # the worst case: the outbox's WAL was just checkpointed and truncated (as after a
        # restart), so once the disk is full every commit needs room the disk does not have
        truncate_wal(tiny_state_dir / "outbox.sqlite")
        writer.start()
        assert writer.full.wait(10), "the runaway writer could not fill the file system"
        wait_until(site.real(38.0))  # yellow, orange and red came while the disk was full
        assert gw.poll() is None, site.logs()  # the same process, still up
        # what an operator sees meanwhile: /metrics and `minewatch status`
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert f'minewatch_storage_state{{path="{tiny_state_dir}",state="full"}} 1.0' in metrics
        assert "minewatch_storage_reserve_released 1.0" in metrics
        assert re.search(r'minewatch_storage_held\{kind="events"\} [1-9]', metrics)
        status = subprocess.run([sys.executable, "-m", "gateway.cli", "status", "--config",
                                 str(site.cfg), "--lang", "en"], cwd=ROOT, capture_output=True,
                                text=True, timeout=30)
        assert f"STATE DIRECTORY {tiny_state_dir} FULL" in status.stdout, status
        writer.stop()
        # the room is back: the gateway says so while it still runs (waited for, not timed: a
        # loaded machine may take seconds of the storm's last simulated hours)
        wait_for_line(tmp_path / "gateway-1.log", '"storage_recovered"', timeout=60)
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
        committed = site.committed()
    finally:
        if writer.is_alive():
            writer.stop()
        if gw.poll() is None:
            gw.kill()
        site.close()
        recorder.close()
    log = (tmp_path / "gateway-1.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    failed = [r for r in records if r.get("event") == "storage_failed"]
    assert len(failed) == 1 and str(tiny_state_dir) in failed[0]["msg"], failed
    assert "is full" in failed[0]["msg"]
    assert len([r for r in records if r.get("event") == "storage_reserve_released"]) == 1
    assert [r for r in records if r.get("event") == "storage_recovered"]
    assert not [r for r in records if r.get("exc") or r["level"] == "critical"], log[-3000:]

    # the platform got every event once, first arrivals in seq order without a gap
    arrived = [p for t, p, _ in recorder.messages if t.endswith(("/alert", "/fault"))]
    events = first_arrivals(arrived)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), \
        [(e["seq"], e["point"], e["state"], e["level"]) for e in arrived]
    for e in events:
        jsonschema.validate(e, SCHEMAS["event"])
    safety = [(e["state"], e["level"]) for e in events if e["kind"] == "safety"]
    assert safety[:6] == [("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange"),
                          ("escalated", "red"), ("downgraded", "orange"),
                          ("downgraded", "yellow")]
    storage = [e for e in events if e["point"] == "gateway:storage"]
    assert [(e["state"], e["fault"]["condition"]) for e in storage] == [
        ("raised", "storage_full"), ("cleared", "storage_full")]
    assert storage[0]["fault"]["path"] == str(tiny_state_dir)
    assert 22.0 < site.hours(storage[0]["observed_at"]) < 24.7  # told before yellow came

    # health said so while it lasted, and nothing waits in memory at the end
    health = recorder.on("health")
    for h in health[::50]:
        jsonschema.validate(h, SCHEMAS["health"])
    full = [h for h in health if h["storage"]["state"] == "full"]
    # events the disk refused stay in memory (sent directly) until they are committed
    assert full and max(h["storage"]["held_events"] for h in full) > 0
    assert all(h["storage"]["reserve_released"] for h in full[-3:])
    assert health[-1]["storage"]["state"] == "ok"
    assert health[-1]["storage"]["held_events"] == 0
    assert health[-1]["storage"]["dropped_events"] == 0

    # after the room came back, every event is in the permanent alert log, delivered
    assert [c["seq"] for c in committed] == [e["seq"] for e in events]
    assert [c["event_id"] for c in committed] == [e["event_id"] for e in events]
    assert all(c["delivered_at"] for c in committed)

    # telemetry waited in memory and was sent: statistics cover the whole episode (every two
    # simulated hours has its windows; the loop's 0.2 s tick is 10 simulated minutes here)
    starts = {int(site.hours(m["window_start"]) // 2) for m in recorder.on("telemetry")
              if m["kind"] == "stats"}
    assert set(range(11, 19)) <= starts, sorted(starts)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_gateway_restarted_on_a_full_disk_runs_and_alerts(
        tmp_path: Path, tiny_state_dir: Path, mosquitto, monkeypatch) -> None:
    site = Site(tmp_path, mosquitto.port, scale=3000.0, start_h=14.0,
                append="\n[outbox]\nreserve_bytes = 1048576\n")
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    writer = RunawayWriter(tiny_state_dir)
    gw = site.gateway(until_h=15.0)  # a first run creates the outbox and stops cleanly
    try:
        assert gw.wait(timeout=60) == 0, site.logs()
        writer.start()  # the disk fills while the gateway is down ...
        assert writer.full.wait(10)
        # ... and systemd starts it again, with its numba cache on that disk and cold (numba
        # dies when it cannot write its cache): blue comes at 20 h, yellow at 24.7 h
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tiny_state_dir / "numba-cache"))
        gw = site.gateway(until_h=28.0)
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if writer.is_alive():
            writer.stop()
        if gw.poll() is None:
            gw.kill()
        site.close()
        recorder.close()
    records = [json.loads(line) for line in (tmp_path / "gateway-2.log").read_text().splitlines()
               if line.startswith("{")]
    assert not [r for r in records if r.get("exc") or r["level"] == "critical"]
    assert len([r for r in records if r.get("event") == "storage_failed"]) == 1
    # the outbox opened although the disk could not take SQLite's shared-memory file
    assert [r for r in records if r.get("event") == "storage_exclusive"]
    arrived = first_arrivals([p for t, p, _ in recorder.messages
                              if t.endswith(("/alert", "/fault"))])
    assert [e["seq"] for e in arrived] == list(range(1, len(arrived) + 1))
    assert [r for r in records if r.get("event") == "numba_cache_moved"]
    assert ("safety", "raised") in [(e["kind"], e["state"]) for e in arrived]
    assert [e["fault"]["condition"] for e in arrived if e["point"] == "gateway:storage"] == [
        "storage_full"]
