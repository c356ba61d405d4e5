"""Hazardous-chemical and metallurgy sites (docs/chemical_metallurgy.md): their templates and
examples load with what they mean, `config init` writes the templates, gas points without levels
get GB/T 50493's two levels marked derived, and those levels are the occupational limits in ppm
at 0 °C (docs/chemical_metallurgy.md#converting-mgm3-to-ppm)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.labels import site_points
from gateway.cli import main
from gateway.config import load_site
from gateway.config.quantities import DERIVED_LEVELS, QUANTITIES
from gateway.detect import threshold_params

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "config" / "templates"
EXAMPLES = ROOT / "config" / "examples"
KINDS = ("chemical_plant", "metallurgy")
SITES = [TEMPLATES / f"{k}.toml" for k in KINDS] + [EXAMPLES / f"{k}.toml" for k in KINDS]


@pytest.mark.parametrize("path", SITES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_plant_sites_validate(path: Path, capsys) -> None:
    assert main(["config", "validate", str(path)]) == 0, capsys.readouterr()
    cfg = load_site(path)
    assert cfg.site.kind == path.stem
    # none of their quantities is a tailings item: no GB 39496 aggregation, no daily-poll rule
    assert not any(QUANTITIES[p.quantity].tailings for p in cfg.points)


@pytest.mark.parametrize("kind", KINDS)
def test_config_init_writes_the_plant_templates(tmp_path: Path, kind: str, capsys) -> None:
    out = tmp_path / "site.toml"
    assert main(["config", "init", "--template", kind, "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text == (TEMPLATES / f"{kind}.toml").read_text(encoding="utf-8")
    assert text.startswith("#") and "EDIT" in text
    assert load_site(out).site.kind == kind


def test_the_chemical_template_means_what_it_says() -> None:
    cfg = load_site(TEMPLATES / "chemical_plant.toml")
    pts = {p.name: p for p in cfg.points}
    # high, design high, high-high, critical high: rising is worse
    lt = pts["LT-101"]
    assert (lt.quantity, lt.thresholds.direction) == ("tank_level", "upper")
    assert lt.thresholds.upper.thresholds == (13.5, 14.0, 14.6, 15.3)
    # a 4-20 mA detector: 4 mA is zero, 20 mA the top of its range
    nh3 = pts["NH3-204"].conversion.params
    assert 4.0 * nh3["scale"] + nh3["offset"] == 0.0 and 20.0 * nh3["scale"] + nh3["offset"] == 100
    # every gas head's or loop's device is polled at least every 10 s
    gases = {"combustible_gas", "nh3", "cl2", "h2s", "co"}
    assert all(cfg.device(p.device).period <= 10 for p in cfg.points if p.quantity in gases)
    assert {p.quantity for p in cfg.points} >= gases | {"tank_level", "tank_temperature",
                                                        "tank_pressure"}


def test_the_metallurgy_template_means_what_it_says() -> None:
    cfg = load_site(TEMPLATES / "metallurgy.toml")
    pts = {p.name: p for p in cfg.points}
    flow = pts["FT-201"]
    assert (flow.quantity, flow.thresholds.direction) == ("cooling_water_flow", "lower")
    assert flow.thresholds.lower.thresholds == (405.0, 360.0, 315.0, 225.0)  # 90/80/70/50 %
    assert pts["TT-201"].thresholds.direction == "upper"
    assert pts["FD-201"].formula.inputs == ("FT-201", "FT-211")  # supply minus return
    # GB 6222's gas-area tiers 30 / 50 / 100 / 200 mg/m3 at 0 degC
    co = [mg * 22.414 / 28.01 for mg in (30, 50, 100, 200)]
    for name in ("CO-301", "CO-401", "CO-303"):
        assert pts[name].thresholds.upper.thresholds == pytest.approx(co, abs=0.1)


def test_gas_points_without_levels_get_gbt_50493_levels_marked_derived(capsys) -> None:
    path = TEMPLATES / "chemical_plant.toml"
    cfg = load_site(path)
    pts = {p.name: p for p in cfg.points}
    lel, cl2, nh3 = pts["LEL-101"], pts["CL2-301"], pts["NH3-201"]
    assert lel.thresholds.derived and cl2.thresholds.derived and not nh3.thresholds.derived
    np.testing.assert_array_equal(lel.thresholds.upper.thresholds, [np.nan, np.nan, 25.0, 50.0])
    np.testing.assert_array_equal(cl2.thresholds.upper.thresholds, [np.nan, np.nan, 0.3, 0.6])
    # and the threshold detector grades with them
    params = threshold_params(cfg)
    assert params.upper[lel.index, 2:].tolist() == [25.0, 50.0]
    assert main(["config", "show", str(path), "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    for p, derived in ((lel, True), (cl2, True), (nh3, False)):
        row = rows[f"points[{p.index}].thresholds.upper.thresholds"]
        assert (row["source"] == "derived") == derived, row
    assert rows[f"points[{lel.index}].thresholds.upper.thresholds"]["value"] == [
        None, None, 25.0, 50.0]
    # and in the table form, for people
    assert main(["config", "show", str(path)]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines()
                if t.startswith(f"points[{cl2.index}].thresholds.upper.thresholds"))
    assert line.endswith("# derived") and "0.3, 0.6" in line


def test_derived_gas_levels_are_the_standard_limits_in_ppm_at_0c() -> None:
    litres_per_mol = 8.314462618 * 273.15 / 101.325  # 22.414 L/mol
    # GB/T 50493: first level <= 100 %, second <= 200 % of the limit (mg/m3), rounded down to
    # the resolution of the detectors that read them
    limits = {"nh3": (17.031, 20.0, 1.0), "cl2": (70.906, 1.0, 0.1)}
    for gas, (molar_mass, limit, resolution) in limits.items():
        for level, factor in (("orange", 1.0), ("red", 2.0)):
            ppm = factor * limit * litres_per_mol / molar_mass
            got = DERIVED_LEVELS[gas][level]
            assert got <= ppm < got + resolution, (gas, level, got, ppm)
        assert set(DERIVED_LEVELS[gas]) == {"orange", "red"}  # only what the standard fixes
    assert DERIVED_LEVELS["combustible_gas"] == {"orange": 25.0, "red": 50.0}  # % LEL
    # sources disagree on CO and H2S by kind of site: their templates set them
    assert "co" not in DERIVED_LEVELS and "h2s" not in DERIVED_LEVELS
    assert all(math.isfinite(v) for levels in DERIVED_LEVELS.values() for v in levels.values())


def test_the_simulator_labels_agree_which_way_is_worse(tmp_path: Path) -> None:
    # labels read site configs without the gateway: a point with no direction takes its
    # quantity's, and the two lists must not disagree
    points = "".join(
        f'[[points]]\nname = "{q}"\nquantity = "{q}"\ndevice = "d"\nchannel = "c"\n'
        f"thresholds = {{ blue = 1.0 }}\n\n"
        for q, info in QUANTITIES.items() if info.direction == "lower")
    site = tmp_path / "site.toml"
    site.write_text(points, encoding="utf-8")
    sides = {name: spec.sides[0][0] for name, spec in site_points(site).items()}
    assert "cooling_water_flow" in sides
    assert set(sides.values()) == {"lower"}, sides
