"""The simulator's ground truth still holds (issue 13, "Done when"): every scenario's labelled
events are found by MineWatch's detectors with no false alarm (benchmarks/ground_truth.py
without its river baseline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.ground_truth import SCENARIOS, run_scenario

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIOS.glob("*.toml")))
def test_every_labelled_event_is_found_without_false_alarms(tmp_path: Path, name: str) -> None:
    result = run_scenario(name, tmp_path, with_river=False)
    mw = result["minewatch"]
    assert mw["detected"] == mw["labels"], result
    assert mw["false_per_point_day"] == 0.0, result
    if "red_lead_h" in result:  # dam_creep: red before the declared failure
        assert result["red_lead_h"] is not None and result["red_lead_h"] > 0, result
