"""`[uplink.mqtt]` once, as every config before several targets, or `[[uplink.mqtt]]` several
times: a single table keeps its meaning (one target, its client id, commands on it), several get
their names, their own client ids and windows, and a change to any of them takes a restart."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config import load_site

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "config" / "examples" / "tailings_pond.toml"

TWO = """
[[uplink.mqtt]]
name = "city"
host = "127.0.0.1"
port = 1883
receipts = true
max_inflight = 1

[[uplink.mqtt]]
name = "province"
host = "127.0.0.2"
port = 8883
prefix = "tailings/v2"
"""


def _two(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[uplink\.mqtt\].*?(?=^\[|\Z)", "", text) + TWO
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_single_table_is_one_target_as_before() -> None:
    cfg = load_site(EXAMPLE)
    (m,) = cfg.mqtt_targets
    assert m is cfg.mqtt and cfg.uplinks == (m,)
    assert (m.name, m.client_id, m.max_inflight) == ("platform", "minewatch-130825-TP001-gw01",
                                                      20)


def test_several_targets_each_with_their_own_name_client_id_and_window(tmp_path: Path) -> None:
    cfg = load_site(_two(tmp_path))
    city, province = cfg.mqtt_targets
    assert cfg.mqtt is city  # commands come over the first
    assert (city.name, city.receipts, city.max_inflight) == ("city", True, 1)
    assert (province.name, province.prefix, province.port, province.receipts) == (
        "province", "tailings/v2", 8883, False)
    assert city.client_id == "minewatch-130825-TP001-gw01"
    assert province.client_id == "minewatch-130825-TP001-gw01-province"


def test_a_changed_second_target_takes_a_restart(tmp_path: Path) -> None:
    from gateway.reconfigure import Reconfigure

    class Running(Reconfigure):  # the daemon's refusals, without its time scale
        def _check_scale(self, cfg) -> None:
            pass

    path = _two(tmp_path)
    running = Running()
    running.cfg = load_site(path)
    path.write_text(path.read_text(encoding="utf-8").replace("127.0.0.2", "127.0.0.3"),
                    encoding="utf-8")
    (problem,) = running.refusals(load_site(path))
    assert problem.path == "uplink.mqtt" and "restart" in problem.message
