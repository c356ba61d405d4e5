"""One dead device on a shared line must not blind the gateway (the peers' most common complaint).

Three devices share one line (a TCP-to-RTU converter, or RS-485 itself on a pseudo-terminal: one
request at a time either way); the third never answers.
Judged by the scheduler's missed-deadline counter, not by wall-clock asserts: with degradation the
healthy devices keep their 1 s period (but for the first failure); with degradation switched off,
the same run shows what the dead device's timeouts cost them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from firmware_sim.devices import SiteSource, load_site_devices
from firmware_sim.scenario import load_scenario
from firmware_sim.slave import (
    LineSettings,
    Reply,
    open_pty_pair,
    serve_rtu_serial,
    serve_tcp,
)
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.daemon import Gateway
from tests.support.services import free_port
from tests.support.sites import example_site

DEAD = """
[[devices]]
name = "radar_dead"
bus = "dtu"
unit = 3
profile = "radar_level_80ghz"
period = "1s"
abnormal_period = "1s"
timeout = "600ms"
retries = 2
degrade_after = DEGRADE
degrade_time = "3s"

[[points]]
name = "WL-09"
quantity = "water_level"
device = "radar_dead"
channel = "empty_height"
conversion = { kind = "radar_level", mount_elevation = 1262.0 }
"""


class SilentUnit3(SiteSource):
    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        if unit == 3:
            return Reply(silent=True)
        return super().read(unit, table, address, count)

    def units(self):
        return frozenset({1, 2, 3})


def _serve(source, port: int | None, master: int | None, stop: threading.Event) -> None:
    async def main() -> None:
        if master is not None:
            server = await serve_rtu_serial(source, master, LineSettings(9600, "N"))
        else:
            server = await serve_tcp(source, "127.0.0.1", port)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(main())


def _run_site(tmp_path: Path, degrade_after: int, transport: str) -> dict:
    scenario = load_scenario("rainstorm")
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    master = None
    replace = {'period = "10min"': 'period = "1s"', 'abnormal_period = "5min"': 'abnormal_period = "1s"'}
    if transport == "rtu":
        master, path = open_pty_pair()
        replace['transport = "tcp"\nhost = "127.0.0.1"\nport = 5020\n'] = (
            f'transport = "rtu"\nserial_port = "{path}"\nbaudrate = 9600\nparity = "N"\n')
    cfg_path = example_site(tmp_path, modbus_port=5020, mqtt_port=free_port(), replace=replace) \
        if transport == "rtu" else example_site(tmp_path, modbus_port=port, mqtt_port=free_port(),
                                                replace=replace)
    dead = DEAD.replace("DEGRADE", str(degrade_after))
    if transport == "rtu":
        dead = dead.replace('timeout = "600ms"', 'timeout = "400ms"')
    cfg_path.write_text(cfg_path.read_text().replace("[[points]]", dead + "\n[[points]]", 1))
    cfg = load_site(cfg_path)
    clock = SimClock(scenario.epoch, 1.0)
    _, devices = load_site_devices(cfg_path)
    source = SilentUnit3([d for d in devices if d.unit in (1, 2)], scenario, clock.now)
    stop = threading.Event()
    server = threading.Thread(target=_serve, args=(source, port, master, stop), daemon=True)
    server.start()
    try:
        gw = Gateway(cfg, clock)
        gw.publisher = None  # the uplink is not under test here
        asyncio.run(gw.run(duration=12.0))
    finally:
        stop.set()
        server.join(5)
        if master is not None:
            os.close(master)
    return {name: p.stats for name, p in gw.pollers.items()}


@pytest.mark.integration
@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["tcp_converter", "rtu"])
def test_a_dead_device_is_degraded_and_the_others_keep_their_period(tmp_path: Path,
                                                                    transport: str) -> None:
    with_degradation = _run_site(tmp_path / "on", degrade_after=1, transport=transport)
    without = _run_site(tmp_path / "off", degrade_after=0, transport=transport)
    dead = with_degradation["radar_dead"]
    assert dead.degraded and dead.probes >= 1
    assert dead.polls <= 6  # 1 failure, then a probe every 3 s
    healthy_on = sum(with_degradation[d].missed_deadlines for d in ("radar_wl1", "vw_logger_a"))
    healthy_off = sum(without[d].missed_deadlines for d in ("radar_wl1", "vw_logger_a"))
    # a failing poll (3 attempts of 600 ms) costs more than the 1 s period: without degradation
    # the healthy devices lose polls every cycle, with it only around the first failure
    # (typical on this machine: 3 with degradation, 9 without). On RS-485 the dead device gets
    # 400 ms, and after its last attempt the line stays quiet 400 ms more, so that a late reply
    # cannot answer the next request: typical 4 with degradation, 8 without. Compared with each
    # other, not with a tight count: a loaded machine misses a deadline more in both runs.
    assert healthy_on <= 8, healthy_on  # around the first failure only: a dozen cycles run
    assert healthy_off >= max(6, healthy_on + 3), (healthy_off, healthy_on)
    assert with_degradation["radar_wl1"].polls >= 10 and with_degradation["radar_wl1"].errors == {}
