"""Where a detector cannot judge a point at its cadence, the gateway says so, naming the point
and the detector: in `config validate`, the daemon's start-up log and `replay` (issue 13)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from gateway.config import load_site
from gateway.detector_notes import point_notes
from gateway.replay import replay_arrays

ROOT = Path(__file__).resolve().parent.parent.parent
DAM = ROOT / "config" / "examples" / "tailings_dam.toml"


def test_a_rain_gauge_cannot_be_judged_stuck_and_slow_points_say_how_slowly() -> None:
    notes = point_notes(load_site(DAM))
    rain = [n for n in notes if n.point == "RG-01"]
    assert [(n.note.detector, n.note.judges) for n in rain] == [("stuck", False)]
    assert "cannot judge" in rain[0].text() and "RG-01" in rain[0].text()
    gnss = {n.note.detector: n.note.text for n in notes if n.point == "GP-01-X"}
    assert gnss["tangent_angle"] == "learns v_ref over 7 d, grades from 14 d on"


def test_validate_prints_the_notes_and_lists_them_in_json() -> None:
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "validate", str(DAM),
                          "--lang", "en"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "note: RG-01 (1 min apart): stuck: cannot judge" in run.stdout
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "validate", str(DAM),
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    notes = json.loads(run.stdout)["notes"]
    assert [(n["point"], n["detector"]) for n in notes if not n["judges"]] == [("RG-01", "stuck")]


def test_replay_notes_come_from_the_observed_cadence() -> None:
    t = np.arange(120) * 86400.0  # daily solutions
    x = np.cumsum(np.full((120, 1), 0.2), axis=0)
    result = replay_arrays(t, ["GP"], x, quantities={"GP": "gnss_disp"})
    texts = [n.text() for n in result.notes]
    assert "GP (1 d apart): tangent_angle: learns v_ref over 30 d, grades from 60 d on" in texts


def test_the_daemon_logs_them_once_at_start(tmp_path, caplog) -> None:
    from gateway.clock import SimClock
    from gateway.daemon import Gateway

    text = DAM.read_text(encoding="utf-8").replace(
        'state_dir = "../../state/tailings_dam"', f'state_dir = "{tmp_path / "state"}"')
    cfg_path = tmp_path / "dam.toml"
    cfg_path.write_text(text, encoding="utf-8")
    cfg = load_site(cfg_path)
    with caplog.at_level(logging.INFO, logger="minewatch.daemon"):
        gw = Gateway(cfg, SimClock(1.78e9, 1.0))
    gw.outbox.close()
    warned = [r for r in caplog.records if getattr(r, "event", "") == "detector_cadence"
              and r.levelno == logging.WARNING]
    assert [(r.point, r.detector) for r in warned] == [("RG-01", "stuck")]
