"""A gateway loads only what its config uses (issue 18: a three-point site must stay small on a
site computer): the example tailings pond, polled from the simulator and publishing to a real
Mosquitto, never imports river, scipy, matplotlib, influxdb_client, prometheus_client (its status
endpoint is off here) or protobuf (its telemetry is compact JSON). Checked on `sys.modules` of a
real `minewatch run` in its own process, after it has read, graded and published values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import MqttRecorder, free_port, python_cli, wait_for_line
from tests.support.sites import ROOT, example_site

# runs the CLI's own `main` for a few seconds, then says which modules the process holds
_RUN = """
import json, sys
from gateway.cli import main
rc = main(["run", "--config", sys.argv[1], "--duration", "6"])
print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
raise SystemExit(rc)
"""
HEAVY = ("river", "scipy", "matplotlib", "influxdb_client", "prometheus_client", "google.protobuf")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_example_pond_never_imports_what_it_does_not_use(tmp_path: Path, mosquitto) -> None:
    sim_port = free_port()
    cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=mosquitto.port)
    text = cfg.read_text(encoding="utf-8")
    assert "\n[storage.influx]" not in text and 'listen = "off"' in text
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(cfg), "--listen", f"127.0.0.1:{sim_port}", log=tmp_path / "sim.log")
    try:
        wait_for_line(tmp_path / "sim.log", '"listening"')
        run = subprocess.run([sys.executable, "-c", _RUN, str(cfg)], cwd=ROOT,
                             capture_output=True, text=True, timeout=90)
    finally:
        sim.terminate()
        sim.wait(5)
        recorder.close()
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"first_values"' in run.stdout + run.stderr  # it polled and graded
    assert recorder.on("telemetry"), "nothing published"  # and published
    line = next(x for x in run.stdout.splitlines() if x.startswith("MODULES "))
    modules = set(json.loads(line.removeprefix("MODULES ")))
    assert "numba" in modules and "gateway.daemon" in modules  # it is the real gateway
    loaded = sorted(m for m in modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
                    and any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert loaded == [], f"the example pond imported {loaded}"
