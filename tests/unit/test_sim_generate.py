"""`firmware-sim generate` writes exactly the values the live simulator serves, with faults where
the schedule puts them."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import numpy as np

from firmware_sim.cli import main as sim_main
from firmware_sim.generate import sample_times
from firmware_sim.scenario import load_scenario


def _read(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    times = np.array([datetime.fromisoformat(r[0]).timestamp() for r in body])
    cols = {name: np.array([float(r[i]) if r[i] else np.nan for r in body])
            for i, name in enumerate(head) if i}
    return head, times, cols


def test_csv_equals_scenario_value_exactly(tmp_path) -> None:
    out = tmp_path / "rain.csv"
    assert sim_main(["generate", "--scenario", "rainstorm", "--period", "10min", "--out",
                     str(out), "--start", "30h", "--end", "40h"]) == 0
    s = load_scenario("rainstorm")
    head, times, cols = _read(out)
    assert head == ["timestamp", "WL-01", "JRX-01", "JRX-02"]
    first = out.read_text().splitlines()[1].split(",")[0]
    assert datetime.fromisoformat(first).utcoffset() is not None
    np.testing.assert_array_equal(times, s.epoch + 30 * 3600 + 600.0 * np.arange(60))
    for name, values in cols.items():
        assert np.array_equal(values, s.value(name, times)), name
    meta = json.loads((tmp_path / "rain.csv.meta.json").read_text())
    assert meta["columns"]["WL-01"] == {"quantity": "water_level", "unit": "m",
                                        "device": "radar_wl1"}
    assert meta["columns"]["JRX-01"]["quantity"] == "phreatic_depth"


def test_faults_appear_where_scheduled(tmp_path) -> None:
    out = tmp_path / "faults.csv"
    assert sim_main(["generate", "--scenario", "faults_month", "--period", "1min", "--out",
                     str(out)]) == 0
    s = load_scenario("faults_month")
    _, times, cols = _read(out)
    tau = times - s.epoch
    for f in s.faults:
        inside = (tau >= f.start) & (tau < f.end)
        if f.kind == "stuck":
            assert np.ptp(cols[f.point][inside]) == 0 and np.nanstd(cols[f.point][~inside]) > 0
        elif f.kind == "dropout":  # no reading: an empty cell, never a plausible 0
            assert np.all(np.isnan(cols[f.point][inside]))
        elif f.kind == "drift":
            excess = cols[f.point][inside] - s.signals[f.point].truth(tau[inside])
            rate = np.polyfit(tau[inside] / 3600.0, excess, 1)[0]
            assert abs(rate - f.params["rate"]) < 1e-3
        elif f.kind == "spike":
            i = int(np.flatnonzero(inside)[0])
            assert cols[f.point][i] - s.signals[f.point].truth(tau[i]) > 0.9 * f.params["size"]
        elif f.kind == "slow":
            assert not np.isnan(cols["WL-01"][inside]).any()  # late replies still arrive
        else:
            lost = [n for n in cols if (f.device == "radar_wl1") == (n == "WL-01")]
            for name in lost:
                assert np.isnan(cols[name][inside]).all() and inside.any(), (f, name)
    # outside every comm window nothing is lost
    comm = np.zeros(times.size, bool)
    for f in s.faults:
        if (f.device and f.kind != "slow") or f.kind == "dropout":
            comm |= (tau >= f.start) & (tau < f.end)
    assert not any(np.isnan(c[~comm]).any() for c in cols.values())


def test_sample_times_cover_the_scenario() -> None:
    s = load_scenario("rainstorm")
    t = sample_times(s, 10.0)
    assert t[0] == s.epoch and t[-1] == s.epoch + s.duration - 10.0 and t.size == 72 * 360
