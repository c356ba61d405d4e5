"""The gateway on RS-485: Modbus RTU over a pseudo-terminal (two unit ids on one line) and RTU over
TCP (a serial device server), reading the simulated sensors and converting them exactly as over
Modbus TCP; and a wrong baud rate, which fails as it fails on site (comm faults, no values)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.devices import SiteSource, load_site_devices
from firmware_sim.scenario import load_scenario
from firmware_sim.slave import (
    LineSettings,
    open_pty_pair,
    serve_rtu_over_tcp,
    serve_rtu_serial,
)
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.daemon import Gateway
from tests.support.services import free_port
from tests.support.sites import example_site
from tests.support.slave import Slave

SPEEDUP = {'period = "10min"': 'period = "1s"', 'abnormal_period = "5min"': 'abnormal_period = "1s"'}


def _gateway(cfg_path: Path, seconds: float) -> tuple[Gateway, list]:
    cfg = load_site(cfg_path)
    scenario = load_scenario("rainstorm")
    clock = SimClock(scenario.epoch + 30 * 3600, 1.0)
    gw = Gateway(cfg, clock)
    gw.publisher = None
    batches = []
    on_batch = gw.on_batch
    gw.on_batch = lambda b: (batches.append(b), on_batch(b))[1]
    asyncio.run(gw.run(duration=seconds))
    return gw, batches


def _source(cfg_path: Path, scenario_offset_h: float = 30.0) -> SiteSource:
    scenario = load_scenario("rainstorm")
    clock = SimClock(scenario.epoch + scenario_offset_h * 3600, 1.0)
    _, devices = load_site_devices(cfg_path)
    return SiteSource(devices, scenario, clock.now)


def _check_values(batches: list, points) -> None:
    scenario = load_scenario("rainstorm")
    checked = 0
    for b in batches:
        for i, v in zip(b.idx, b.values, strict=True):
            truth = float(scenario.value(points[i].name, b.t))
            # 0.1 Hz and 1 mm register resolution, and the sample may straddle a scenario tick
            assert v == pytest.approx(truth, abs=0.02), (points[i].name, v, truth)
            checked += 1
    assert checked >= 6


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_rtu_on_a_serial_line_with_two_units(tmp_path: Path) -> None:
    master, slave_path = open_pty_pair()
    cfg_path = example_site(tmp_path, modbus_port=1, mqtt_port=free_port(), replace={
        **SPEEDUP, 'transport = "tcp"\nhost = "127.0.0.1"\nport = 1\n':
        f'transport = "rtu"\nserial_port = "{slave_path}"\nbaudrate = 9600\nparity = "N"\n'})
    source = _source(cfg_path)
    try:
        with Slave(lambda: serve_rtu_serial(source, master, LineSettings(9600, "N"))):
            gw, batches = _gateway(cfg_path, 4.0)
    finally:
        os.close(master)
    assert gw.cfg.buses[0].max_outstanding == 1
    assert {b.device for b in batches} == {"radar_wl1", "vw_logger_a"}
    assert all((b.quality == 0).all() for b in batches)
    _check_values(batches, gw.cfg.points)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_wrong_baud_rate_fails_as_on_site(tmp_path: Path) -> None:
    master, slave_path = open_pty_pair()
    cfg_path = example_site(tmp_path, modbus_port=1, mqtt_port=free_port(), replace={
        **SPEEDUP, 'transport = "tcp"\nhost = "127.0.0.1"\nport = 1\n':
        f'transport = "rtu"\nserial_port = "{slave_path}"\nbaudrate = 19200\nparity = "N"\n',
        'timeout = "1s"': 'timeout = "300ms"'})
    source = _source(cfg_path)
    try:
        with Slave(lambda: serve_rtu_serial(source, master, LineSettings(9600, "N"))):
            # each failed request is followed by its timeout of quiet line (a late reply must not
            # answer the next request), so fault_after = 3 failed polls take a few seconds
            gw, batches = _gateway(cfg_path, 8.0)
    finally:
        os.close(master)
    assert batches and all((b.quality == 5).all() for b in batches)  # comm_fail, every poll
    assert all(np.isnan(b.values).all() for b in batches)
    assert gw.engine.fault.any()  # the fault events say so; no colour was raised
    assert not gw.engine.level.any()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_rtu_over_tcp_through_a_serial_device_server(tmp_path: Path) -> None:
    port = free_port()
    cfg_path = example_site(tmp_path, modbus_port=port, mqtt_port=free_port(), replace={
        **SPEEDUP, 'transport = "tcp"': 'transport = "rtu_over_tcp"'})
    source = _source(cfg_path)
    with Slave(lambda: serve_rtu_over_tcp(source, "127.0.0.1", port)):
        gw, batches = _gateway(cfg_path, 4.0)
    assert gw.cfg.buses[0].max_outstanding == 1
    assert all((b.quality == 0).all() for b in batches)
    _check_values(batches, gw.cfg.points)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_serial_port_that_cannot_be_opened_is_a_comm_fault_not_a_dead_bus(
        tmp_path: Path) -> None:
    # a pseudo-terminal refuses even parity: pyserial raises from inside pymodbus's connect.
    # That used to escape the poll and end the bus task; it is the device's comm fault now.
    from gateway.acquire import DevicePoller
    from gateway.modbus.client import make_client

    master, slave_name = os.openpty()
    try:
        cfg_path = example_site(tmp_path, modbus_port=free_port(), mqtt_port=free_port())
        text = cfg_path.read_text(encoding="utf-8")
        text = text.replace('transport = "tcp"', 'transport = "rtu"').replace(
            'host = "127.0.0.1"', f'serial_port = "{os.ttyname(slave_name)}"\nparity = "E"', 1)
        text = "\n".join(line for line in text.splitlines() if not line.startswith("port ="))
        cfg_path.write_text(text, encoding="utf-8")
        cfg = load_site(cfg_path)
        device = cfg.devices[0]
        poller = DevicePoller(device, cfg)

        async def one_poll():
            client = make_client(cfg.bus(device.bus))
            try:
                return await poller.poll(client, SimClock(1.78e9, 1.0))
            finally:
                client.close()

        batch = asyncio.run(one_poll())
    finally:
        os.close(master)
        os.close(slave_name)
    assert (batch.quality == 5).all()  # comm_fail
    assert poller.stats.errors["connect"] == 1 and poller.stats.consecutive_failures == 1
