"""`make demo` stays true: the README's first command runs the whole site and exits 0 with the
eight-event rainstorm sequence, gap-free, received by the platform subscriber, which
acknowledges the red alert once, after which that alert is not reminded again."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import require_binary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_demo_runs_the_rainstorm_end_to_end() -> None:
    require_binary("mosquitto", "/usr/sbin/mosquitto")  # the demo would fall back to amqtt
    run = subprocess.run([sys.executable, "-m", "firmware_sim.cli", "demo"], cwd=ROOT,
                         capture_output=True, text=True, timeout=280)
    out = run.stdout
    assert run.returncode == 0, out[-3000:] + run.stderr[-3000:]
    assert "broker: mosquitto" in out
    assert "events received by the platform: 8 (8 safety, 0 fault)" in out
    assert ("sequence: raised:blue -> escalated:yellow -> escalated:orange -> escalated:red -> "
            "downgraded:orange -> downgraded:yellow -> downgraded:blue -> cleared:none") in out
    # reminders of the unacknowledged orange alert add events, as many as the clock's ticks give
    assert re.search(r"alert episodes: 1; seq 1\.\.(\d+) without gaps", out)
    assert re.search(r"acknowledged from the platform: the red alert of WL-01 by 值班员 duty "
                     r"officer \(seq \d+\); reminders before it: \d+, after it at that level: 0",
                     out)
    assert "gateway answered ack" in out and "ok, event seq=" in out
    assert "last status: offline" in out
