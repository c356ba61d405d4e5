"""`minewatch replay`: the live path's detectors and alert engine over an exported series."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from firmware_sim.scenario import load_scenario
from gateway.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "config" / "examples" / "tailings_pond.toml"
EXPECTED = [("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange"),
            ("escalated", "red"), ("downgraded", "orange"), ("downgraded", "yellow"),
            ("downgraded", "blue"), ("cleared", "none")]


def _export(path: Path, sep: str = ";") -> int:
    """The rainstorm as an old logger would export it: naive local times, ';' separated."""
    sc = load_scenario("rainstorm")
    t = sc.epoch + np.arange(0, sc.duration, 600.0)
    zone = ZoneInfo("Asia/Shanghai")
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=sep)
        w.writerow(["time", "WL-01", "JRX-01", "JRX-02"])
        for ts in t:
            w.writerow([datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S"),
                        *(f"{float(sc.value(p, ts)):.3f}" for p in ("WL-01", "JRX-01", "JRX-02"))])
    return len(t)


def test_replay_of_the_rainstorm_gives_the_live_event_sequence(tmp_path: Path, capsys) -> None:
    rows = _export(tmp_path / "export.csv")
    out, events = tmp_path / "graded.csv", tmp_path / "events.jsonl"
    assert main(["replay", str(tmp_path / "export.csv"), "--config", str(EXAMPLE), "--out",
                 str(out), "--events", str(events), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == rows and summary["max_grade"] == 4
    evs = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["state"], e["level"]) for e in evs if e["point"] == "WL-01"] == EXPECTED
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    graded = list(csv.DictReader(out.open()))
    assert len(graded) == rows  # exactly one row per input row, in input order
    assert max(int(r["WL-01_grade"]) for r in graded) == 4
    assert {"WL-01", "WL-01_score", "WL-01_grade", "JRX-02_grade"} <= set(graded[0])


def test_replay_errors_name_the_row_and_column(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,level\n2026-07-20 00:00:00,1.0\n2026-07-20 00:10:00,abc\n")
    assert main(["replay", str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    assert "row 3, column 'level'" in capsys.readouterr().err
    assert main(["replay", str(bad), "--columns", "nope", "--out", str(tmp_path / "o.csv")]) == 2
    assert "no column(s) ['nope']" in capsys.readouterr().err


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_generic_replay_without_a_config_and_any_separator(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "series.csv"
    rng = np.random.default_rng(3)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=sep)
        w.writerow(["epoch", "flow"])
        for k in range(300):
            w.writerow([1_784_476_800 + 60 * k, f"{10 + rng.normal(0, 0.1):.3f}"])
    out = tmp_path / "o.csv"
    assert main(["replay", str(path), "--quantity", "generic", "--out", str(out)]) == 0
    assert len(list(csv.DictReader(out.open()))) == 300
