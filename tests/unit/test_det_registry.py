"""Detector registry: quantity names agree with the gateway's list (read, not imported)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import detectors.registry as registry

QUANTITIES_PY = Path(__file__).resolve().parents[2] / "gateway" / "config" / "quantities.py"


def gateway_quantities() -> dict[str, tuple[str, bool]]:
    """name -> (direction, tailings) from the QUANTITIES literal, without importing gateway."""
    tree = ast.parse(QUANTITIES_PY.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "QUANTITIES":
            out = {}
            for key, call in zip(node.value.keys, node.value.values, strict=True):
                args = [ast.literal_eval(a) for a in call.args]
                out[ast.literal_eval(key)] = (args[1], args[2])
            return out
    raise AssertionError("QUANTITIES not found")


def test_every_gateway_quantity_has_a_default_set_and_no_other() -> None:
    assert set(registry.DEFAULTS) == set(gateway_quantities())


def test_tailings_items_and_rate_directions_agree_with_the_gateway() -> None:
    q = gateway_quantities()
    assert {k for k, (_, tailings) in q.items() if tailings} == registry.TAILINGS_ITEMS
    for name, (direction, _) in q.items():
        # the velocity and step detectors take their `direction` from here
        if {"rate", "step"} & set(registry.detectors_for(name)):
            # a displacement channel is often one axis of a station: either way is worse
            either = name in ("gnss_disp", "inclinometer_disp")
            assert registry.rate_direction(name) == (
                2 if either else -1 if direction == "lower" else 1), name


def test_issue_defaults() -> None:
    # levels: a threshold, a rate and an abrupt step, each learned when no level is configured
    assert registry.detectors_for("water_level") == ("threshold", "rate", "step", "stuck")
    # a jump in a piezometer's level is a sensor event, not a movement of the phreatic line
    assert registry.detectors_for("phreatic_depth") == ("threshold", "rate", "stuck")
    assert registry.detectors_for("gnss_disp") == (
        "threshold", "rate", "tangent_angle", "inverse_velocity", "step", "stuck")
    # a daily temperature cycle is no level shift: CUSUM is no default quality verdict
    assert "cusum" not in {d for q in registry.DEFAULTS for d in registry.detectors_for(q)}
    for gas in ("ch4", "co", "h2s", "no2", "o2"):  # the issue's "gas"
        # a plume's front is no sensor fault: Hampel is no default quality verdict for gas
        assert registry.detectors_for(gas) == ("threshold", "stuck")
    assert registry.detectors_for("generic") == ("generic", "stuck")
    assert all("stuck" in registry.detectors_for(q) for q in registry.DEFAULTS)
    with pytest.raises(KeyError, match="unknown quantity 'foo'"):
        registry.detectors_for("foo")


def test_every_name_resolves_to_a_detector() -> None:
    used = {d for q in registry.DEFAULTS for d in registry.detectors_for(q)}
    assert used <= set(registry.DETECTORS)
    for name in registry.DETECTORS:
        cls = registry.detector_class(name)
        assert cls.name == name
        assert all(hasattr(cls, m) for m in ("update", "run", "state", "load"))
    with pytest.raises(KeyError, match="unknown detector"):
        registry.detector_class("magic")


def test_every_per_point_detector_is_built_from_its_own_parameter_class() -> None:
    assert set(registry.DETECTORS) - {"river_hst"} == registry.PER_POINT
    for name in sorted(registry.PER_POINT):
        cls, params = registry.detector_class(name), registry.params_class(name)
        assert cls.__module__ == params.__module__, name
        det = cls(params.defaults(2))  # validates the defaults, builds the state
        assert det.name == name and det.n == 2
    with pytest.raises(ValueError, match="'river_hst' cannot run per point"):
        registry.params_class("river_hst")
    with pytest.raises(KeyError, match="unknown detector"):
        registry.params_class("magic")


def test_the_registry_imports_no_detector_module() -> None:
    # the config loader imports the registry: numba, the kernels and river stay out until a
    # site's detectors are built
    code = ("import sys, detectors.registry, gateway.config.load; "
            "print(sorted(m for m in sys.modules if m.startswith(('numba', 'river')) "
            "or m in ('detectors.threshold', 'detectors.river_adapter')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


def gateway_units() -> dict[str, str]:
    """name -> unit from the QUANTITIES literal."""
    tree = ast.parse(QUANTITIES_PY.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "QUANTITIES":
            return {ast.literal_eval(k): ast.literal_eval(call.args[0])
                    for k, call in zip(node.value.keys, node.value.values, strict=True)}
    raise AssertionError("QUANTITIES not found")


def test_a_gas_head_in_clean_air_may_read_zero_for_weeks() -> None:
    # every toxic or combustible gas (ppm, %LEL, methane's %vol): flatness proves nothing
    gases = {q for q, unit in gateway_units().items() if unit in ("ppm", "%LEL")} | {"ch4"}
    assert {"co", "h2s", "no2", "nh3", "cl2", "combustible_gas", "ch4"} <= gases
    for gas in gases:
        assert registry.stuck_min_s(gas) == float("inf"), gas
        # a plume's front is no sensor fault: Hampel is no default quality verdict for gas
        assert registry.detectors_for(gas) == ("threshold", "stuck"), gas


def test_process_plant_defaults() -> None:
    # a tank's fill rate is an operation, its overfill a level; it may hold still for days
    for q in ("tank_level", "tank_temperature", "tank_pressure"):
        assert registry.detectors_for(q) == ("threshold", "stuck"), q
        assert not registry.aggregation_enabled(q)
    assert registry.stuck_min_s("tank_level") >= 24 * 3600
    # cooling water: a lost flow is a step down, a warming outlet a rise
    assert registry.detectors_for("cooling_water_flow") == ("threshold", "step", "stuck")
    assert registry.rate_direction("cooling_water_flow") == -1
    assert registry.detectors_for("cooling_water_temp") == ("threshold", "rate", "stuck")
    assert registry.rate_direction("cooling_water_temp") == 1
    assert registry.stuck_min_s("cooling_water_flow") == 3600.0  # turbulent: never flat long
