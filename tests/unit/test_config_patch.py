"""A config patch merges into the running file: entries by name, comments kept, and a patch
that cannot be merged says where."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.config import load_site
from gateway.config.patch import PatchProblem, merge_patch

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")


def test_a_patch_changes_one_point_adds_one_removes_one_and_keeps_the_comments() -> None:
    out = merge_patch(EXAMPLE, """
[alerts]
fault_after = 5

[[points]]
name = "WL-01"
thresholds = { red = 1255.5 }

[[points]]
name = "JRX-02"
delete = true

[[points]]
name = "WL-02"
quantity = "water_level"
unit = "m"
device = "radar_wl1"
channel = "empty_height"
conversion = { kind = "radar_level", mount_elevation = 1262.5 }
""")
    doc = tomllib.loads(out)
    points = {p["name"]: p for p in doc["points"]}
    assert list(points) == ["WL-01", "JRX-01", "WL-02"]
    assert points["WL-01"]["thresholds"] == {"direction": "upper", "blue": 1253.0,
                                             "yellow": 1254.0, "orange": 1255.0, "red": 1255.5}
    assert points["WL-02"]["conversion"]["mount_elevation"] == 1262.5
    assert doc["alerts"] == {"fault_after": 5}
    assert doc["uplink"] == tomllib.loads(EXAMPLE)["uplink"]
    assert "# red: design maximum flood level" in out  # the engineer's notes survive


def test_the_merged_text_is_an_ordinary_config(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(EXAMPLE.replace('"../../state/tailings_pond"', '"state"'), encoding="utf-8")
    text = merge_patch(site.read_text(), '[[devices]]\nname = "radar_wl1"\nperiod = "5min"\n')
    cfg = load_site(site, text=text)
    assert cfg.device("radar_wl1").period == 300.0 and cfg.source == text
    assert cfg.version != load_site(site).version


@pytest.mark.parametrize(("patch", "path", "says"), [
    ('[[points]]\nthresholds = { red = 1.0 }', "points[0]", "needs its name"),
    ('[[points]]\nname = "XX"\ndelete = true', "points[0]", "no point 'XX' to delete"),
    ('[[points]]\nname = "WL-01"\ndelete = "yes"', "points[0].delete", "takes true"),
    ('points = 3', "points", "entries are tables"),
    ('[site\ncode = 1', "", "not valid TOML"),
])
def test_a_patch_that_cannot_be_merged_says_where(patch: str, path: str, says: str) -> None:
    with pytest.raises(PatchProblem, match=says) as exc:
        merge_patch(EXAMPLE, patch)
    assert exc.value.path == path
