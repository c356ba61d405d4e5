"""Hazardous-chemical and metallurgy sites end to end (docs/chemical_metallurgy.md): `firmware-sim
serve` plays a scenario over Modbus TCP and RTU over TCP, the real gateway reads it with the
profiles (gas heads, 4-20 mA loops, radar tank gauges, pressure transmitters) and raises exactly
the levels the scenario's noise-free truth is labelled with, point by point.

The templates are read as `config init` writes them, their buses pointed at the simulator: a
template a site starts from runs against its scenario as it is."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from firmware_sim.labels import safety_labels, site_points
from gateway.outbox import Outbox
from tests.integration.test_example_sites import _check, _read_site, _site_copy
from tests.support.services import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LEVEL = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
# a label must start this long before the run ends to be due: three polls of debounce at 10 s
# and a poll's worth of scheduling
DUE_S = 60.0


def _template_copy(tmp: Path, kind: str) -> Path:
    """The template as written, every bus pointed at a simulator port on loopback (a serial
    line becomes RTU over TCP, as through a device server), private state, no status port."""
    text = (ROOT / "config" / "templates" / f"{kind}.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^transport = "rtu"\nserial_port = .*\n(?:baudrate|parity|stopbits).*\n'
                  r'(?:(?:baudrate|parity|stopbits).*\n)*',
                  'transport = "rtu_over_tcp"\nhost = "127.0.0.1"\nport = 502\n'
                  'max_outstanding = 1\n', text)
    text = re.sub(r'(?m)^host = "[^"]*"', 'host = "127.0.0.1"', text)
    text = re.sub(r"(?m)^port = \d+", lambda m: f"port = {free_port()}", text)
    text = re.sub(r"(?m)^state_dir = .*$", f'state_dir = "{tmp / "state"}"', text)
    text = re.sub(r"(?m)^listen = .*$", 'listen = "off"', text)
    path = tmp / f"{kind}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _levels(site: Path, scenario_name: str, offset_h: float, duration: float,
            scale: float) -> tuple[dict[str, int], dict[str, int], object]:
    """Serve the scenario from `offset_h` for `duration` s and read every bus of `site`: the
    highest level each point reached (events of the gateway), the highest level each point is
    labelled with for a label due in the run, and the gateway."""
    buses = [b["name"] for b in tomllib.loads(site.read_text(encoding="utf-8"))["buses"]]
    gw, batches, scenario, epoch = _read_site(site.parent, "", scenario_name, offset_h, buses,
                                              duration=duration, scale=scale, site=site)
    checked = _check(gw, batches, scenario, {d.name for d in gw.cfg.devices})
    assert checked, "no point was compared with the scenario"
    reached: dict[str, int] = {}
    log = Outbox(gw.cfg.outbox.path)  # the site's permanent alert log, as `alerts list` reads it
    events = log.alert_log(10_000)
    log.close()
    for e in events:
        if e["kind"] == "safety" and not e["point"].startswith("item:"):
            reached[e["point"]] = max(reached.get(e["point"], 0), LEVEL[e["level"]])
    labelled: dict[str, int] = {}
    end = epoch + duration
    for lb in safety_labels(scenario, site_points(site)):
        if lb["start"] <= end - DUE_S and lb["end"] > epoch:
            level = LEVEL[lb["expected_level"]]
            labelled[lb["point"]] = max(labelled.get(lb["point"], 0), level)
    return reached, labelled, gw


@pytest.mark.timeout(150)
def test_the_chemical_template_reads_an_ammonia_plume_over_its_detectors(
        tmp_path: Path) -> None:
    # 08:59-09:05: the release starts at 09:00; the plume reaches NH3-201 (Modbus head, 25 m)
    # and NH3-204 (4-20 mA loop, 55 m) within a minute and a quarter
    site = _template_copy(tmp_path, "chemical_plant")
    reached, labelled, gw = _levels(site, "toxic_release", 8 + 59 / 60, 360.0, 60.0)
    assert labelled == {"NH3-201": LEVEL["red"], "NH3-204": LEVEL["blue"]}
    assert reached == labelled  # and no other point said anything
    # the points without levels in the file are armed with GB/T 50493's
    assert {p.name for p in gw.cfg.points if p.thresholds and p.thresholds.derived} == {
        "LEL-101", "CL2-301"}


@pytest.mark.timeout(150)
def test_the_metallurgy_template_reads_a_cooling_water_loss(tmp_path: Path) -> None:
    # 04:59-05:16: the pump trips at 05:00; supply and return flow fall through every level in
    # a minute, the outlet water passes 65 degC at about 05:13; the CO detectors stay quiet
    site = _template_copy(tmp_path, "metallurgy")
    reached, labelled, _ = _levels(site, "cooling_water_loss", 4 + 59 / 60, 1020.0, 60.0)
    assert labelled == {"FT-201": LEVEL["red"], "FT-211": LEVEL["red"], "TT-201": LEVEL["red"]}
    assert reached == labelled  # FD-201, supply minus return, stays near zero: no leak


@pytest.mark.timeout(150)
def test_the_chemical_example_reads_a_tank_overfilling(tmp_path: Path) -> None:
    # 12:05-12:21: T-101 stands above its high-high level and passes the critical high level at
    # 12:16; read through the example's own tank-farm and gas lines
    site = _site_copy(tmp_path, "chemical_plant")
    reached, labelled, _ = _levels(site, "tank_overfill", 12 + 5 / 60, 960.0, 100.0)
    assert labelled == {"LT-101": LEVEL["red"]}
    assert reached == labelled
