"""Ground-truth labels agree with the physics they are declared from, and every scenario fits its
site config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_sim.cli import main as sim_main
from firmware_sim.labels import scenario_labels, site_points
from firmware_sim.scenario import ScenarioError, load_scenario, scenario_dir

SCENARIOS = sorted(p.stem for p in scenario_dir().glob("*.toml"))


def _check_safety(scenario, labels) -> int:
    """Each safety label: the truth is at the threshold at its ends, beyond it inside and not
    beyond it just outside; returns how many labels were checked."""
    points = site_points(scenario.site_config)
    checked = 0
    for lb in labels:
        if lb["kind"] != "safety":
            continue
        sig = scenario.signals[lb["point"]]
        a, b = lb["start"] - scenario.epoch, lb["end"] - scenario.epoch
        inside = np.linspace(a, b, 2001)[1:-1]
        # with direction "both" the label's side is the one its interval lies beyond
        mid = float(sig.truth(0.5 * (a + b)))
        side, level = next((s, lv[lb["expected_level"]]) for s, lv in points[lb["point"]].sides
                           if lb["expected_level"] in lv
                           and (mid >= lv[lb["expected_level"]]) == (s == "upper"))
        sign = 1.0 if side == "upper" else -1.0
        assert np.all(sign * (sig.truth(inside) - level) >= -1e-9), lb
        for edge, outward in ((a, -1.0), (b, 1.0)):
            if 0.0 < edge < scenario.duration:
                assert abs(float(sig.truth(edge)) - level) < 1e-6, lb
                assert sign * (float(sig.truth(edge + outward * 1.0)) - level) < 0, lb
        checked += 1
    return checked


def _scenario_with_site(name: str):
    s = load_scenario(scenario_dir() / f"{name}.toml")
    assert s.site_config.is_file(), f"{name} drives {s.site_config}, which does not exist"
    return s


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_loads_and_drives_points_of_its_site(name: str) -> None:
    s = _scenario_with_site(name)
    points = site_points(s.site_config)
    devices = {p.device for p in points.values()}
    for key in s.signals:
        assert key.split(":")[0] in points, f"{name}: {key} is not a point of {s.site_config}"
    for f in s.faults:
        assert (f.point in s.signals) if f.point else (f.device in devices), (name, f)


@pytest.mark.parametrize("name", SCENARIOS)
def test_labels_are_checked_against_the_truth(name: str) -> None:
    s = _scenario_with_site(name)
    labels = scenario_labels(s)
    _check_safety(s, labels)
    faults = [lb for lb in labels if lb["kind"] == "fault"]
    assert [(lb["fault_kind"], lb["start"], lb["end"]) for lb in faults] == sorted(
        ((f.kind, s.epoch + f.start, s.epoch + f.end) for f in s.faults), key=lambda x: x[1])
    if name in ("quiet_month", "faults_month"):
        assert not [lb for lb in labels if lb["kind"] == "safety"], "a quiet scenario has no event"


def test_rainstorm_labels_the_four_levels_nested() -> None:
    s = load_scenario("rainstorm")
    labels = [lb for lb in scenario_labels(s) if lb["kind"] == "safety"]
    assert [lb["expected_level"] for lb in labels] == ["blue", "yellow", "orange", "red"]
    assert _check_safety(s, labels) == 4
    for outer, inner in zip(labels, labels[1:], strict=False):
        assert outer["start"] < inner["start"] and inner["end"] < outer["end"]
    assert labels[0]["start"] == s.epoch + 20 * 3600  # 1251.3 → 1256.4 over 12–36 h hits 1253


def test_dam_creep_declares_its_failure_time(tmp_path) -> None:
    site = tmp_path / "dam.toml"  # a stand-in for the dam site: displacement red at 15 mm
    site.write_text("".join(f'''
[[points]]
name = "{name}"
device = "d"
quantity = "displacement"
unit = "mm"
thresholds = {{ direction = "upper", red = 15.0 }}
''' for name in ("GP-01-X", "GP-01-Y", "IN-01-S1")))
    text = (scenario_dir() / "dam_creep.toml").read_text()
    text = text.replace('"../../config/examples/tailings_dam.toml"', f'"{site}"')
    (tmp_path / "creep.toml").write_text(text)
    s = load_scenario(tmp_path / "creep.toml")
    labels = scenario_labels(s)
    fails = [lb for lb in labels if lb["kind"] == "failure"]
    assert {lb["start"] for lb in fails} == {s.epoch + 14 * 86400} and len(fails) == 3
    # all three pass 15 mm in the last day before t_f and stay beyond it (the readings hold)
    assert _check_safety(s, labels) == 3
    assert all(lb["end"] == s.epoch + s.duration for lb in labels if lb["kind"] == "safety")


def test_lower_direction_and_both(tmp_path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('''
[[points]]
name = "D"
device = "dev"
quantity = "phreatic_depth"
unit = "m"
thresholds = { direction = "lower", blue = 11.0, yellow = 10.0, orange = 8.8, red = 8.0 }
[[points]]
name = "T"
device = "dev"
quantity = "temperature"
unit = "degC"
thresholds = { direction = "both", upper = { blue = 30.0, red = 40.0 }, lower = { blue = 0.0 } }
''')
    (tmp_path / "s.toml").write_text(f'''
[scenario]
name = "s"
site_config = "{site}"
duration = "10h"
[signals.D]
keyframes = [["0h", 12.0], ["4h", 9.0], ["8h", 12.0]]
[signals.T]
keyframes = [["0h", 20.0], ["2h", 35.0], ["4h", 20.0], ["6h", -5.0], ["8h", 20.0]]
''')
    s = load_scenario(tmp_path / "s.toml")
    labels = scenario_labels(s)
    assert _check_safety(s, labels) == 4
    d = {lb["expected_level"]: lb for lb in labels if lb["point"] == "D"}
    assert set(d) == {"blue", "yellow"}  # the depth bottoms at 9.0, above orange (8.8)
    assert abs(d["blue"]["start"] - (s.epoch + 4 * 3600 / 3)) < 1e-3  # 12 → 9 over 4 h hits 11
    assert sorted(lb["start"] for lb in labels if lb["point"] == "T") == pytest.approx(
        [s.epoch + 2 * 3600 * 10 / 15, s.epoch + 4 * 3600 + 2 * 3600 * 20 / 25])


def test_fault_kind_is_validated(tmp_path) -> None:
    (tmp_path / "bad.toml").write_text('''
[scenario]
name = "bad"
site_config = "x.toml"
duration = "1h"
[[faults]]
kind = "melted"
point = "X"
''')
    with pytest.raises(ScenarioError, match=r"bad\.toml: faults\[0\]\.kind"):
        load_scenario(tmp_path / "bad.toml")


def test_labels_cli_writes_json_lines(tmp_path) -> None:
    out = tmp_path / "labels.jsonl"
    assert sim_main(["labels", "--scenario", "rainstorm", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == json.loads(json.dumps(scenario_labels("rainstorm")))
    assert set(rows[0]) == {"point", "start", "end", "expected_level", "kind", "fault_kind"}


def test_gas_leak_labels_against_a_stand_in_site(tmp_path) -> None:
    """The gas scenario's labels, checked against a stand-in site with the coal-mine CH4 levels
    (alarm 1.0, power cut 1.5 %vol), CO at 24 ppm and O2 lower-is-worse at 20.6 %vol."""
    site = tmp_path / "mine.toml"
    site.write_text('''
[[points]]
name = "CH4-01"
device = "gas1"
quantity = "methane"
unit = "%vol"
thresholds = { direction = "upper", blue = 0.5, yellow = 1.0, red = 1.5 }
[[points]]
name = "CO-01"
device = "gas1"
quantity = "carbon_monoxide"
unit = "ppm"
thresholds = { direction = "upper", yellow = 24.0 }
[[points]]
name = "O2-01"
device = "gas1"
quantity = "oxygen"
unit = "%vol"
thresholds = { blue = 20.6 }
''')
    text = (scenario_dir() / "gas_leak.toml").read_text()
    text = text.replace('"../../config/examples/underground_mine.toml"', f'"{site}"')
    (tmp_path / "gas.toml").write_text(text)
    s = load_scenario(tmp_path / "gas.toml")
    labels = scenario_labels(s)
    assert _check_safety(s, labels) == 5
    got = [(lb["point"], lb["expected_level"]) for lb in labels if lb["kind"] == "safety"]
    # O2 reaches 20.6 when the gases displace 1.44 % of the air: between CH4 yellow and red
    assert got == [("CH4-01", "blue"), ("CH4-01", "yellow"), ("O2-01", "blue"),
                   ("CH4-01", "red"), ("CO-01", "yellow")]
