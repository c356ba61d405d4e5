"""Disk-full benchmark: how many alert commits the outbox's reserve buys, and what it costs.

    python -m benchmarks.disk_reserve [--reserve 262144,1048576,4194304]

On a full disk, an alert commit takes the room of the reserve file (`[outbox] reserve_bytes`).
How far that room goes depends on the WAL: SQLite appends every commit's pages to the WAL and
only reuses it from the start after a checkpoint, so a fresh WAL (after a restart) grows by
about 8 pages (32 KiB) per event until the checkpoint threshold. For each threshold (SQLite's
default 1000 pages, the outbox's 100, and 32) it fills a private tmpfs up to the reserve, with
a realistic outbox history and a fresh WAL, and counts alert commits until SQLITE_FULL; then
it measures the commit rate of each threshold on the ordinary disk. Mounting a tmpfs needs
root: without it, only the rates are measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
THRESHOLDS = (1000, 100, 32)


def _event(n: int) -> dict:
    """An escalation as the engine writes it (about 1.3 KB of JSON)."""
    return {"schema": "minewatch/event/1", "event_id": str(uuid.uuid4()),
            "alert_id": str(uuid.uuid4()), "kind": "safety", "state": "escalated",
            "level": "yellow", "grade_roman": "III", "prev_level": "blue",
            "site": "130825-TP001", "gateway": "gw01", "device": "radar_wl1", "point": "WL-01",
            "quantity": "water_level", "unit": "m", "detector": "threshold", "value": 1254.01,
            "threshold": 1254.0, "criterion": "value >= 1254 m (yellow)",
            "evidence": {"score": 0.5}, "since": 1,
            "message": {"zh": "WL-01 库水位 1254.01 m，升级为黄色预警（阈值 1254 m）",
                        "en": "WL-01 reservoir water level 1254.01 m escalated to yellow "
                              "warning (threshold 1254 m)"},
            "observed_at": 1000 * n, "observed_at_iso": "2026-07-21T06:50:00.000Z",
            "observed_at_local": "2026-07-21 14:50:00"}


def _outbox(path: Path, pages: int):
    from gateway.outbox import Outbox

    ob = Outbox(path)
    ob.db.execute(f"PRAGMA wal_autocheckpoint={pages}")
    return ob


def _commits_in_reserve(mount: Path, reserve: int, pages: int) -> int:
    for f in mount.iterdir():
        f.unlink()
    ob = _outbox(mount / "outbox.sqlite", pages)
    for n in range(300):  # a history: delivered alerts, then an outage's telemetry
        ob.commit_events([("t/alert", _event(n))], [])
    for row in ob.peek(1000):
        ob.ack(row)
    ob.add_telemetry([("t/telemetry", b"x" * 3000)] * 50)
    ob.close()  # a clean stop deletes the WAL: the restart begins with a fresh one
    ob = _outbox(mount / "outbox.sqlite", pages)
    st = os.statvfs(mount)
    fd = os.open(mount / "fill", os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, bytes(max(0, st.f_bavail * st.f_frsize - reserve)))
    finally:
        os.close(fd)
    n = 0
    while not ob.hold.events:  # the first commit the disk refuses is held in memory
        ob.commit_events([("t/alert", _event(1000 + n))], [])
        n += 1
    ob.close()
    return n - 1


def _rate(directory: Path, pages: int, n: int = 1000) -> float:
    ob = _outbox(directory / f"rate-{pages}.sqlite", pages)
    started = time.perf_counter()
    for i in range(n):
        ob.commit_events([("t/alert", _event(i))], [])
    rate = n / (time.perf_counter() - started)
    ob.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reserve", default="262144,1048576,4194304",
                        help="reserve sizes in bytes, comma separated")
    args = parser.parse_args()
    reserves = [int(x) for x in args.reserve.split(",")]
    logging.disable(logging.CRITICAL)  # every run ends on purpose with a full disk
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "sqlite": sqlite3.sqlite_version,
                                "platform": platform.platform()},
                    "commits_in_reserve": {}, "commits_per_s": {}}
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-disk-") as work:
        work = Path(work)
        for pages in THRESHOLDS:
            result["commits_per_s"][pages] = round(_rate(work, pages), 1)
        if os.geteuid() == 0:
            mount = work / "tiny"
            mount.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                           check=True)
            try:
                for pages in THRESHOLDS:
                    result["commits_in_reserve"][pages] = {
                        reserve: _commits_in_reserve(mount, reserve, pages) for reserve in reserves}
            finally:
                subprocess.run(["umount", str(mount)], check=False)
        else:
            print("(not root: no tmpfs, so only the commit rates are measured)")
    print("\n== disk_reserve: alert commits a full disk still takes, from a fresh WAL")
    print(f"{'wal_autocheckpoint':>18s} {'commits/s':>10s} "
          + " ".join(f"{r // 1024:>7d} KiB" for r in reserves))
    for pages in THRESHOLDS:
        fits = result["commits_in_reserve"].get(pages, {})
        print(f"{pages:>18d} {result['commits_per_s'][pages]:>10.0f} "
              + " ".join(f"{fits.get(r, '-'):>11}" for r in reserves))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "disk_reserve.json").write_text(json.dumps(result, indent=2))
    print(f"written: {RESULTS / 'disk_reserve.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
