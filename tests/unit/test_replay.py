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


def test_a_bad_row_is_skipped_and_named_and_an_unusable_file_is_an_error(tmp_path: Path,
                                                                        capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,level\n2026-07-20 00:00:00,1.0\n2026-07-20 00:10:00,abc\n"
                   "2026-07-20 00:20:00,1.1\n")
    out = tmp_path / "o.csv"
    assert main(["replay", str(bad), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "1 row(s) skipped: line 3: column 'level': 'abc' is not a number" in captured.err
    assert json.loads(captured.out)["input"]["bad_rows"] == 1
    assert len(list(csv.DictReader(out.open()))) == 2
    assert main(["replay", str(bad), "--columns", "nope", "--out", str(out)]) == 2
    assert "no column(s) ['nope']" in capsys.readouterr().err
    useless = tmp_path / "useless.csv"
    useless.write_text("time,level\nyesterday,1.0\n2026-07-20 00:10:00,abc\n")
    assert main(["replay", str(useless), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{useless}: no usable data rows" in err and "Traceback" not in err


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


def _parse(argv: list[str]):
    """The replay options as gateway/cli.py would parse them (it delegates to replay.py)."""
    import argparse

    from gateway.replay import add_replay_arguments

    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    return parser.parse_args(argv)


def test_long_output_gives_each_detector_and_its_evidence(tmp_path: Path) -> None:
    from gateway.replay import replay

    rows = _export(tmp_path / "export.csv")
    args = _parse([str(tmp_path / "export.csv"), "--config", str(EXAMPLE), "--long",
                   "--out", str(tmp_path / "long.csv"), "--columns", "WL-01"])
    assert args.long and args.tz == "Asia/Shanghai"
    replay(args.input, args.out, config=args.config, columns=args.columns, long=args.long)
    long = list(csv.DictReader((tmp_path / "long.csv").open()))
    detectors = {r["detector"] for r in long}
    assert {"threshold", "stuck"} <= detectors
    assert len(long) == rows * len(detectors)  # one row per input row, channel and detector
    assert max(int(r["grade"]) for r in long if r["detector"] == "threshold") == 4
    assert all(isinstance(json.loads(r["evidence"]), dict) for r in long)


def test_sidecar_gives_each_column_its_quantity_and_plot_draws(tmp_path: Path) -> None:
    from gateway.replay import ReplayError, replay

    path = tmp_path / "gen.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "WL-01", "CH4-01"])
        for k in range(200):
            w.writerow([1_784_476_800 + 60 * k, 10 + 0.001 * k, 0.2 if k < 150 else 1.5])
    meta = tmp_path / "gen.csv.meta.json"
    meta.write_text(json.dumps({"columns": {"WL-01": {"quantity": "water_level", "unit": "m"},
                                            "CH4-01": {"quantity": "ch4", "unit": "%LEL"}}}))
    out, png = tmp_path / "o.csv", tmp_path / "o.png"
    replay(path, out, sidecar=meta, long=True, plot_path=png)
    detectors = {(r["channel"], r["detector"]) for r in csv.DictReader(out.open())}
    assert ("WL-01", "rate") in detectors and ("CH4-01", "threshold") in detectors
    assert ("WL-01", "spike") not in detectors and ("CH4-01", "rate") not in detectors
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta.write_text(json.dumps({"columns": {"WL-01": {"quantity": "water_level"}}}))
    with pytest.raises(ReplayError, match=r"no quantity for column\(s\) \['CH4-01'\]"):
        replay(path, out, sidecar=meta)


def test_replay_arrays_gives_the_csv_path_results_without_a_file(tmp_path: Path) -> None:
    from gateway.replay import ReplayError, replay_arrays

    sc = load_scenario("rainstorm")
    t = sc.epoch + np.arange(0, sc.duration, 600.0)
    names = ["WL-01", "JRX-01", "JRX-02"]
    x = np.array([[float(sc.value(p, ts)) for p in names] for ts in t])
    res = replay_arrays(t, names, x, config=EXAMPLE)
    assert [(e["state"], e["level"]) for e in res.events if e["point"] == "WL-01"] == EXPECTED
    assert res.score.shape == res.grade.shape == res.fault.shape == res.quality.shape == x.shape
    assert res.grade[:, 0].max() == 4 and res.quality.max() == 0
    # quantities instead of a site: the default detectors of each, no thresholds, no grade
    bare = replay_arrays(t, ["WL-01"], x[:, :1], quantities={"WL-01": "water_level"})
    assert bare.grade.max() == 0 and {d for d, *_ in bare.parts} == {"threshold", "rate", "step", "stuck"}
    with pytest.raises(ReplayError, match="times must increase strictly"):
        replay_arrays(t[::-1], names, x, config=EXAMPLE)


def test_a_generated_storm_is_graded_with_its_sidecar_site_config(tmp_path: Path) -> None:
    # `firmware-sim generate` names the scenario's site config in the sidecar: replay grades
    # with its thresholds, so the README's rainstorm example crosses red (it gave 0 events)
    from firmware_sim.generate import write_csv
    from gateway.replay import replay

    export = tmp_path / "storm.csv"
    write_csv("rainstorm", str(export), period="10min")
    summary = replay(export, tmp_path / "graded.csv", sidecar=Path(f"{export}.meta.json"),
                     events_path=tmp_path / "events.jsonl", tz="UTC")
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert summary["max_grade"] == 4
    assert any(e["level"] == "red" and e["detector"] == "threshold" for e in events)
