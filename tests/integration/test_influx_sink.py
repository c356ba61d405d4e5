"""The InfluxDB sink against a real VictoriaMetrics: raw series survive the database going away.

The gateway runs in this process on the simulated clock (so the test can see exactly which
samples the pipeline handed to the sink), reading the rainstorm scenario from the simulator over
Modbus TCP and publishing to a real Mosquitto; VictoriaMetrics is stopped and started again in the
middle. Afterwards every (series, timestamp) the sink was given is in the database exactly once,
with its value and quality, and nothing else is: a re-sent line keeps its original timestamp.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import urllib.request
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from firmware_sim.scenario import load_scenario
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.daemon import Gateway
from tests.support.services import VictoriaMetrics, free_port, python_cli, require_binary
from tests.support.sites import example_site

HEALTH_SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema" / "health.schema.json"
SCALE = 1200.0  # 10-min polls every 0.5 s of real time; the blue crossing falls in the window


def _influx_site(tmp: Path, vm: VictoriaMetrics, modbus_port: int, mqtt_port: int,
                 listen: str = "off") -> Path:
    cfg = example_site(tmp, modbus_port=modbus_port, mqtt_port=mqtt_port, listen=listen)
    with cfg.open("a", encoding="utf-8") as f:
        f.write(f'\n[storage.influx]\nurl = "{vm.url}"\nbucket = "site"\n'
                'flush_interval = "0.2s"\nretry_max = "1s"\ntimeout = "2s"\n')
    return cfg


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def _recording(gw: Gateway) -> tuple[list, list]:
    """Wrap the sink's inputs: what the pipeline handed over is the ground truth."""
    batches: list = []
    events: list = []
    add_batch, add_events = gw.sink.add_batch, gw.sink.add_events

    def record_batch(batch):
        batches.append(batch)
        add_batch(batch)

    def record_events(evs):
        events.extend(evs)
        add_events(evs)

    gw.sink.add_batch = record_batch
    gw.sink.add_events = record_events
    return batches, events


def _series(vm: VictoriaMetrics) -> dict[tuple[str, str], dict[int, float]]:
    """(metric name, point) -> {timestamp ms: value}, asserting no timestamp twice."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for s in vm.export():
        m = s["metric"]
        key = (m["__name__"], m.get("point") or m.get("device", ""))
        assert key not in out, f"series {key} split in two: {m}"
        assert len(set(s["timestamps"])) == len(s["timestamps"]), f"{key}: duplicate samples"
        out[key] = dict(zip(s["timestamps"], s["values"], strict=True))
    return out


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_database_outage_mid_scenario_loses_and_duplicates_nothing(tmp_path: Path,
                                                                    mosquitto) -> None:
    binary = require_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    vm = VictoriaMetrics(binary, tmp_path / "vm", free_port())
    vm.start()
    scenario = load_scenario("rainstorm")
    sim_port = free_port()
    http_port = free_port()
    cfg_path = _influx_site(tmp_path, vm, sim_port, mosquitto.port, f"127.0.0.1:{http_port}")
    epoch = scenario.epoch + 16 * 3600
    anchor = time.time() + 3.0
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(cfg_path), "--listen", f"127.0.0.1:{sim_port}", "--epoch", str(epoch),
                     "--time-scale", str(SCALE), "--anchor", str(anchor),
                     log=tmp_path / "sim.log")
    outage: dict[str, int] = {}
    try:
        gw = Gateway(load_site(cfg_path), SimClock(epoch, SCALE, anchor))
        batches, events = _recording(gw)

        async def scenario_with_outage() -> None:
            run = asyncio.create_task(gw.run(duration=12 * 3600 - (time.time() - anchor) * SCALE))
            await asyncio.sleep(max(0.0, anchor - time.time()) + 8)
            await asyncio.to_thread(vm.stop)
            outage["from"] = len(batches)
            await asyncio.sleep(10)
            outage["backlog"] = gw.sink.backlog()
            outage["errors"] = sum(gw.sink.stats.write_errors.values())
            outage["health"] = gw.health(gw.clock.now())
            outage["metrics"] = await asyncio.to_thread(_get, f"http://127.0.0.1:{http_port}/metrics")
            await asyncio.to_thread(vm.start)
            outage["to"] = len(batches)
            await run

        asyncio.run(scenario_with_outage())
    finally:
        sim.terminate()
        sim.wait(10)
    try:
        # the outage really happened while the pipeline kept producing
        assert outage["to"] - outage["from"] >= 10
        assert outage["backlog"] > 0 and outage["errors"] > 0
        # the heartbeat tells the platform the database is behind, and why
        jsonschema.validate(outage["health"], json.loads(HEALTH_SCHEMA.read_text()))
        assert outage["health"]["sink"]["backlog"] > 0
        assert outage["health"]["sink"]["last_error"] == "connection refused"
        assert re.search(r"minewatch_sink_backlog [1-9]", outage["metrics"])
        assert re.search(r'minewatch_sink_write_errors_total\{kind="unreachable"\} [1-9]',
                         outage["metrics"]), outage["metrics"]
        assert gw.sink.backlog() == 0, "the spool is not empty after a clean stop"
        series = _series(vm)
    finally:
        vm.stop()

    cfg = gw.cfg
    expected: dict[tuple[str, str], dict[int, float]] = {}
    for b in batches:
        ms = int(round(b.t * 1000))
        for i, v, q in zip(b.idx.tolist(), b.values.tolist(), b.quality.tolist(), strict=True):
            point = cfg.points[i].name
            expected.setdefault(("reading_quality", point), {})[ms] = float(q)
            if math.isfinite(v):
                expected.setdefault(("reading_value", point), {})[ms] = v
    readings = {k: v for k, v in series.items() if k[0].startswith("reading_")}
    assert readings.keys() == expected.keys()
    for key, samples in expected.items():
        got = readings[key]
        assert got.keys() == samples.keys(), f"{key}: missing {sorted(samples.keys() - got.keys())[:5]}" \
            f" extra {sorted(got.keys() - samples.keys())[:5]}"
        np.testing.assert_allclose([got[t] for t in sorted(samples)],
                                   [samples[t] for t in sorted(samples)], rtol=1e-12)

    # the alert events of the window (the reservoir crosses blue) are there at observed_at
    assert any(e["kind"] == "safety" and e["level"] == "blue" for e in events)
    levels = {k[1]: v for k, v in series.items() if k[0] == "alert_level"}
    for e in events:
        assert levels[e["point"]][e["observed_at"]] == {"none": 0, "blue": 1, "yellow": 2,
                                                       "orange": 3, "red": 4}[e["level"]]
    # the raw measurands beside the converted values: each vibrating-wire frequency with its
    # thermistor, and the radar's empty height, at the readings' own timestamps
    vw = [p.name for p in cfg.points if p.conversion.kind == "vibrating_wire"]
    assert vw and all(("raw_value", n) in series and ("raw_aux", n) in series for n in vw)
    for n in vw:
        assert series[("raw_value", n)].keys() <= expected[("reading_quality", n)].keys()
        assert min(series[("raw_value", n)].values()) > 100.0  # a frequency in Hz, not a depth
    # and the heartbeat, with the spool's own backlog
    assert any(k[0] == "gateway_health_devices_online" for k in series)
    assert any(k[0] == "device_health_online" for k in series)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_lines_spooled_at_stop_are_written_by_the_next_start(tmp_path: Path, mosquitto) -> None:
    """The database is down for a whole run: the spool file carries the lines to the next run."""
    binary = require_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    vm = VictoriaMetrics(binary, tmp_path / "vm", free_port())  # not started yet
    scenario = load_scenario("rainstorm")
    sim_port = free_port()
    cfg_path = _influx_site(tmp_path, vm, sim_port, mosquitto.port)
    anchor = time.time() + 2.0
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(cfg_path), "--listen", f"127.0.0.1:{sim_port}", "--epoch",
                     str(scenario.epoch), "--time-scale", str(SCALE), "--anchor", str(anchor),
                     log=tmp_path / "sim.log")
    try:
        first = Gateway(load_site(cfg_path), SimClock(scenario.epoch, SCALE, anchor),
                        drain_timeout=1.0)
        batches, _ = _recording(first)
        asyncio.run(first.run(duration=2 * 3600))
        left = first.sink.backlog()
        assert left > 0 and len(batches) >= 4
        assert first.sink.stats.last_error == "connection refused"

        vm.start()
        second = Gateway(load_site(cfg_path), SimClock(scenario.epoch + 2 * 3600, SCALE))
        assert second.sink.backlog() == left  # restored from the spool file
        asyncio.run(second.run(duration=600))
        assert second.sink.backlog() == 0
        series = _series(vm)
    finally:
        sim.terminate()
        sim.wait(10)
        vm.stop()
    first_run = {int(round(b.t * 1000)) for b in batches}
    stored = set().union(*(s.keys() for k, s in series.items() if k[0] == "reading_quality"))
    assert first_run <= stored
