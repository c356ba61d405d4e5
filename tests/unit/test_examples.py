"""The docstring examples are tests: pytest collects them from the packages (`--doctest-modules` in
pyproject.toml), and every detector module keeps the runnable example its docstring promises.

pytest runs the examples; this only makes sure they cannot disappear quietly, by a config change
that stops collecting them or by an edit that drops a module's examples.
"""

from __future__ import annotations

import doctest
import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
# module -> examples it has at least (the threshold detector walks a methane sensor through
# alarm, cut and restore, step by step)
EXAMPLES = {
    "detectors.aggregate": 1, "detectors.cusum": 1, "detectors.generic": 1,
    "detectors.inverse_velocity": 1, "detectors.rate": 1, "detectors.registry": 1,
    "detectors.river_adapter": 1, "detectors.spike": 1, "detectors.stuck": 1,
    "detectors.tangent_angle": 1, "detectors.threshold": 5,
}


def test_pytest_collects_the_examples_of_every_package() -> None:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        ini = tomllib.load(fh)["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in ini["addopts"].split()
    assert {"tests", "gateway", "detectors", "firmware_sim"} <= set(ini["testpaths"])


@pytest.mark.parametrize(("module", "at_least"), sorted(EXAMPLES.items()))
def test_detector_module_keeps_its_examples(module: str, at_least: int) -> None:
    tests = doctest.DocTestFinder().find(importlib.import_module(module))
    assert sum(len(t.examples) for t in tests) >= at_least, module
