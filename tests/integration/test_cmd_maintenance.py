"""`maintenance` against a real Mosquitto and the simulator: a point in maintenance is still
reported (flagged) and raises no safety alert, even when its thresholds are lowered under its
value; its window ends by itself and the alert it holds then is raised."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.support.platform import CommandSite
from tests.support.sites import ROOT

# the reservoir is at about 1251.2 m for the scenario's first 12 h (72 s at x600)
UNDER_THE_VALUE = '[[points]]\nname = "WL-01"\nthresholds = { blue = 1247.0, yellow = 1248.0, ' \
    'orange = 1249.0, red = 1250.0 }\n'


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_maintenance_window_suppresses_and_then_expires(tmp_path: Path, mosquitto) -> None:
    site = CommandSite(tmp_path, mosquitto.port, scale=600.0)
    try:
        rc, doc, err = site.cmd("maintenance", "--points", "WL-01", "--for", "2h", "--by", "张工",
                                "--reason", "radar cleaning")
        assert rc == 0, err
        jsonschema.validate(doc, json.loads(
            (ROOT / "config" / "schema" / "cmd_result.schema.json").read_text()))
        window = doc["result"]["started"][0]
        assert window["point"] == "WL-01" and window["by"] == "张工"
        until = window["until"]
        patch = tmp_path / "low.toml"
        patch.write_text(UNDER_THE_VALUE)
        rc, doc, err = site.cmd("config", "--patch", str(patch), "--by", "张工")
        assert rc == 0, err

        def reported(flagged: bool) -> list[dict]:
            return [p for m in site.recorder.on("telemetry") if m["kind"] == "values"
                    for p in m["points"] if p["point"] == "WL-01"
                    and p.get("maintenance", False) == flagged and p["observed_at"] > 0]

        site.wait(lambda: reported(True), why="WL-01 reported in maintenance")
        rc, doc, _ = site.cmd("status")
        listed = doc["result"]["maintenance"]
        assert [(w["point"], w["reason"]) for w in listed] == [("WL-01", "radar cleaning")]

        red = site.wait(lambda: [a for a in site.recorder.on("alert") if a["point"] == "WL-01"],
                        timeout=60, why="the red alert after the window")
        assert (red[0]["state"], red[0]["level"]) == ("raised", "red")
        assert red[0]["observed_at"] >= until  # nothing while the window was open
        assert [p for p in reported(False) if p["observed_at"] < until
                and p["observed_at"] > window["since"]] == []
        rc, doc, _ = site.cmd("status")
        assert doc["result"]["maintenance"] == []
        assert site.wait(lambda: [p for p in reported(False) if p["observed_at"] >= until])
    finally:
        site.close()
