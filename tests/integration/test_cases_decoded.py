"""Decoding problems as data: each folder of tests/cases/ with an `expected_values.toml` is a site
whose simulated device holds the words of its `registers.toml`; one poll of every device with
`minewatch device test` must give exactly those values (and qualities).

The device is the simulator's Modbus TCP slave on a real loopback socket, serving the words as
written, so a case pins the whole path a field reading takes: planner, wire, decoder, conversion.
Every point of the site must be named in the expected file, as a value or as a quality.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from firmware_sim.slave import serve_tcp
from gateway.cli import main
from gateway.config import load_site
from tests.support.cases import ImageSource, cases_with
from tests.support.services import free_port
from tests.support.slave import Slave

VALUE_CASES = cases_with("expected_values.toml")


def _on_port(case: Path, tmp: Path, port: int) -> Path:
    """The case copied to `tmp` with its TCP bus on `port`."""
    copy = tmp / case.name
    shutil.copytree(case, copy)
    site = copy / "site.toml"
    text, n = re.subn(r"^port = \d+", f"port = {port}", site.read_text(encoding="utf-8"),
                      count=1, flags=re.MULTILINE)
    assert n == 1, f"{case}: its site needs one TCP bus with a port"
    site.write_text(text, encoding="utf-8")
    return site


def test_there_are_decoding_cases() -> None:
    assert len(VALUE_CASES) >= 6


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", VALUE_CASES, ids=[c.name for c in VALUE_CASES])
def test_a_poll_decodes_the_expected_values(case: Path, tmp_path: Path, capsys) -> None:
    with (case / "expected_values.toml").open("rb") as fh:
        expected = tomllib.load(fh)
    values, qualities = expected.get("values", {}), expected.get("quality", {})
    tolerance = float(expected.get("tolerance", 1e-9))
    port = free_port()
    site = _on_port(case, tmp_path, port)
    cfg = load_site(site)
    assert {p.name for p in cfg.points} == set(values) | set(qualities), \
        "every point of the case is expected as a value or a quality"
    source = ImageSource(case / "registers.toml")
    got: dict[str, dict] = {}
    with Slave(lambda: serve_tcp(source, "127.0.0.1", port)):
        for device in cfg.devices:
            rc = main(["device", "test", device.name, "--config", str(site), "--json"])
            report = json.loads(capsys.readouterr().out)
            assert rc == (0 if all(p["quality"] == "good" for p in report["points"]) else 1)
            got |= {p["point"]: p for p in report["points"]}
    for name, want in values.items():
        assert got[name]["quality"] == "good", (name, got[name])
        assert got[name]["value"] == pytest.approx(want, abs=tolerance), (name, got[name])
    for name, quality in qualities.items():
        assert got[name]["quality"] == quality and got[name]["value"] is None, (name, got[name])
