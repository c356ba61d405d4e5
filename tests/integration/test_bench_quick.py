"""The quick peer comparison runs end to end: the hand-written poller (the floor), MineWatch and
collectd's modbus plugin polled the same tiny simulated site, and the JSON has their rows filled
with plausible figures, MineWatch's CPU also as a ratio to the floor's of the same round.

collectd is a real part here: missing, it fails under CI=true (it is installed by
benchmarks/peers/setup.sh) and is skipped with the reason elsewhere. No timing is asserted
beyond "values flowed": the machine may be busy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import ROOT, require_binary

pytestmark = pytest.mark.integration

DEVICES, POINTS, SECONDS = 5, 10, 8


def test_quick_comparison_fills_the_floor_minewatch_and_collectd_rows(tmp_path: Path) -> None:
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    # collectd-core ships the modbus plugin with the daemon
    require_binary("collectd", "/usr/sbin/collectd")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers", "--systems", "floor,minewatch,collectd",
         "--devices", str(DEVICES), "--points", str(POINTS), "--seconds", str(SECONDS),
         "--repeat", "1", "--warmup", "40", "--no-setup", "--results", str(tmp_path),
         "--out", "quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "quick.json").read_text())
    rows = doc["systems"]
    assert set(rows) == {"hand-written poller (the floor)", "MineWatch", "collectd modbus"}
    for name, row in rows.items():
        assert not row.get("error"), f"{name}: {row.get('error')}"
        run = row["runs"][0]
        assert run["points_per_s"] > 0, name
        assert run["missed_points"] >= 0
        assert run["cpu_s_per_10k_points"] > 0
        assert run["peak_rss_mb"] > 0
        assert run["delay_p50_ms"] is not None and run["delay_p50_ms"] >= -1000
    # MineWatch merges a device's registers into one request; collectd sends one per point
    mw = rows["MineWatch"]["runs"][0]["requests_per_poll"]
    cd = rows["collectd modbus"]["runs"][0]["requests_per_poll"]
    assert 0.5 <= mw <= 2.0, mw
    assert POINTS * 0.5 <= cd <= POINTS * 2.0, cd
    assert (tmp_path / "quick.md").read_text().count("| MineWatch |") == 1
    # the floor is 1.00 of itself, MineWatch a positive ratio of the same round
    assert rows["hand-written poller (the floor)"]["summary"]["cpu_vs_floor"]["median"] == 1.0
    assert rows["MineWatch"]["summary"]["cpu_vs_floor"]["median"] > 0
