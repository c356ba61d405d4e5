"""`config` against a real Mosquitto and the simulator: a bad pushed config is refused with its
located problems and the running config is untouched; a good one is applied, audited with who
sent it and confirmed; one that cannot reach its devices is rolled back to the one before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.support.platform import CommandSite
from tests.support.services import free_port, wait_for_line
from tests.support.sites import ROOT


def _schema(name: str) -> dict:
    return json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())


def _audit(site: CommandSite) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "alerts", "list", "--config",
                          str(site.cfg), "--audit", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_pushed_configs_refused_applied_audited_and_rolled_back(tmp_path: Path,
                                                                mosquitto) -> None:
    site = CommandSite(tmp_path, mosquitto.port, scale=60.0, commands='config_probation = "4s"\n')
    try:
        first = site.cfg.read_text(encoding="utf-8")
        rc, doc, _ = site.cmd("status")
        version = doc["result"]["config"]["version"]

        # yellow above orange: refused, every problem located, nothing changed
        bad = tmp_path / "bad.toml"
        bad.write_text('[[points]]\nname = "WL-01"\nthresholds = { yellow = 1257.0 }\n')
        rc, doc, _ = site.cmd("config", "--patch", str(bad), "--by", "李工")
        assert rc == 1 and doc["error"]["code"] == "invalid_config"
        jsonschema.validate(doc, _schema("cmd_result"))
        problems = doc["error"]["problems"]
        assert [p["path"] for p in problems] == ["points[0].thresholds.orange"]
        assert problems[0]["line"] and str(site.cfg) in problems[0]["text"]
        # the key that guards the commands is never changed by a command
        guard = tmp_path / "guard.toml"
        guard.write_text('[commands]\nwindow = "1h"\n')
        rc, doc, _ = site.cmd("config", "--patch", str(guard), "--by", "李工")
        assert rc == 1 and [p["path"] for p in doc["error"]["problems"]] == ["commands"]
        assert site.cfg.read_text(encoding="utf-8") == first
        rc, doc, _ = site.cmd("status")
        assert doc["result"]["config"]["version"] == version

        # a new red level: applied, written, audited with who sent it, confirmed
        good = tmp_path / "good.toml"
        good.write_text('[[points]]\nname = "WL-01"\nthresholds = { red = 1255.5 }\n')
        rc, doc, err = site.cmd("config", "--patch", str(good), "--by", "李工", "--reason",
                                "flood season")
        assert rc == 0, err
        applied = doc["result"]
        assert applied["changed"] and applied["previous"] == version
        assert applied["thresholds_changed"] == ["WL-01"]
        second = site.cfg.read_text(encoding="utf-8")
        assert "red = 1255.5" in second and "# red: design maximum flood level" in second
        wait_for_line(site.log, '"config_confirmed"', timeout=30)
        rc, doc, _ = site.cmd("status")
        assert doc["result"]["config"] == {"version": applied["version"]}
        audit = _audit(site)
        wl01 = [a for a in audit if a["kind"] == "thresholds" and a["subject"] == "WL-01"]
        assert wl01[-1]["by"] == "李工" and wl01[-1]["after"]["upper"]["thresholds"][3] == 1255.5
        assert wl01[-1]["before"]["upper"]["thresholds"][3] == 1256.0
        kinds = [(a["kind"], a["before"], a["after"], a["by"]) for a in audit
                 if a["kind"].startswith("config")]
        assert kinds == [("config", version, applied["version"], "李工"),
                         ("config_confirmed", version, applied["version"], "李工")]

        # a bus pointed where nothing answers: valid, applied, and rolled back by itself
        dead = tmp_path / "dead.toml"
        dead.write_text(f'[[buses]]\nname = "dtu"\nport = {free_port()}\n')
        rc, doc, err = site.cmd("config", "--patch", str(dead), "--by", "王工")
        assert rc == 0, err
        assert site.cfg.read_text(encoding="utf-8") != second
        line = wait_for_line(site.log, '"config_rolled_back"', timeout=60)
        assert "radar_wl1" in line and "vw_logger_a" in line
        assert site.cfg.read_text(encoding="utf-8") == second
        rc, doc, _ = site.cmd("status")
        cfg = doc["result"]["config"]
        assert cfg["version"] == applied["version"]
        assert cfg["rolled_back"]["to"] == applied["version"]
        assert [a["kind"] for a in _audit(site)][-1] == "config_rollback"
        rc, doc, err = site.cmd("measure")  # the devices answer again
        assert rc == 0 and doc["result"]["unanswered"] == {}, err
        assert all(p["quality_name"] == "good" for p in doc["result"]["points"])
    finally:
        site.close()
