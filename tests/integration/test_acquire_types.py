"""Every data type and word order, and every fault kind, read through the gateway's own poller.

The simulator serves `tests/support/profiles/all_types.toml` (every numeric type in all four word
orders, holding and input registers, Modicon 4xxxx/3xxxxx addresses) over Modbus TCP and over RTU
on a pseudo-terminal; the gateway's planner, poller and decoder must give back exactly the values
the simulator encoded. Then each fault the field produces (exception replies, no reply, a corrupt
frame, a dropped connection, a slow device) must become the right quality and error kind: a fault,
never a value. (Replies that do not answer their request: `test_malformed_replies.py`.)
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import numpy as np
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
from gateway.acquire import DevicePoller
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.modbus.client import make_client
from tests.support.services import free_port
from tests.support.slave import Slave

PROFILES = Path(__file__).resolve().parents[1] / "support" / "profiles"
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
VALUES: dict[str, float] = {"i16": -1234, "u16": 65000, "i16_swapped": -2, "scaled": 21.7}
for order in ORDERS:
    VALUES |= {f"int32_{order}": -123456, f"uint32_{order}": 4_000_000_000,
               f"float32_{order}": 123456.0,  # docs/modbus.md#word-and-byte-order, every order
               f"int64_{order}": -9_000_000_000_000_000,
               f"uint64_{order}": 18_000_000_000_000_000_000, f"float64_{order}": -1.5e10}


def _site(tmp: Path, bus: str) -> tuple[Path, Path]:
    """A site with one all-types device on `bus`, and a scenario holding every value constant."""
    points = "".join(
        f'\n[[points]]\nname = "{name}"\nquantity = "generic"\ndevice = "probe"\n'
        f'channel = "{name}"\ndetectors = ["threshold"]\n' for name in VALUES)
    site = tmp / "site.toml"
    site.write_text(f"""
profiles_dir = "{PROFILES}"

[site]
code = "TEST"
name = "all types"
kind = "tailings_pond"
timezone = "Asia/Shanghai"

[gateway]
id = "gw-test"
state_dir = "{tmp / 'state'}"
listen = "off"

{bus}

[[devices]]
name = "probe"
bus = "line"
unit = 7
profile = "all_types"
period = "1min"
timeout = "500ms"
retries = 0
{points}""", encoding="utf-8")
    signals = "".join(f'\n[signals.{name}]\nkeyframes = [["0h", {value!r}], ["2h", {value!r}]]\n'
                      for name, value in VALUES.items())
    scenario = tmp / "constant.toml"
    scenario.write_text(f"""
[scenario]
name = "constant"
site_config = "{site}"
duration = "2h"
tick = "1s"
{signals}""", encoding="utf-8")
    return site, scenario


class Switchable:
    """The simulator's register source with one of its fault replies switched on."""

    def __init__(self, source: SiteSource):
        self.source = source
        self.fault: Reply | None = None

    def units(self):
        return self.source.units()

    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        reply = self.source.read(unit, table, address, count)
        if self.fault is None:
            return reply
        return self.fault._replace(registers=reply.registers)

    def write(self, unit: int, table: str, address: int, values: list) -> Reply:
        return self.source.write(unit, table, address, values)


def _serve(transport: str, tmp: Path, source) -> tuple[Slave, str, int | None]:
    if transport == "tcp":
        port = free_port()
        bus = f'[[buses]]\nname = "line"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
        return Slave(lambda: serve_tcp(source, "127.0.0.1", port)), bus, None
    master, path = open_pty_pair()
    bus = (f'[[buses]]\nname = "line"\ntransport = "rtu"\nserial_port = "{path}"\n'
           'baudrate = 9600\nparity = "N"\n')
    return Slave(lambda: serve_rtu_serial(source, master, LineSettings(9600, "N"))), bus, master


def _setup(tmp: Path, transport: str):
    """(config, poller, switchable source, slave, master fd) for one transport."""
    site, scenario_path = _site(tmp, "")  # the source needs the devices, not the bus
    scenario = load_scenario(scenario_path)
    _, devices = load_site_devices(site)
    source = Switchable(SiteSource(devices, scenario, lambda: scenario.epoch + 60.0))
    slave, bus, master = _serve(transport, tmp, source)
    site, _ = _site(tmp, bus)
    cfg = load_site(site)
    return cfg, DevicePoller(cfg.device("probe"), cfg), source, slave, master


def _poll(cfg, poller: DevicePoller, times: int = 1) -> list:
    async def run() -> list:
        client = make_client(cfg.buses[0])
        clock = SimClock(0.0, 1.0)
        try:
            return [await poller.poll(client, clock) for _ in range(times)]
        finally:
            client.close()

    return asyncio.run(run())


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_every_type_and_word_order_decodes_to_what_the_device_holds(tmp_path: Path,
                                                                    transport: str) -> None:
    cfg, poller, _, slave, master = _setup(tmp_path, transport)
    try:
        with slave:
            (batch,) = _poll(cfg, poller)
    finally:
        if master is not None:
            os.close(master)
    names = [cfg.points[i].name for i in batch.idx]
    got = dict(zip(names, batch.values.tolist(), strict=True))
    assert set(got) == set(VALUES)
    assert (batch.quality == 0).all()
    for name, want in VALUES.items():
        if name == "scaled":
            assert got[name] == pytest.approx(want, abs=1e-9)  # raw 617 x 0.1 - 40
        else:
            assert got[name] == want, f"{name}: decoded {got[name]!r}, the device holds {want!r}"
    # 27 holding and 49 input registers: one request per table is the minimum
    assert len(poller.requests) == 2 and poller.stats.requests == 2


FAULTS = {
    # name: (the simulator's reply, transports, expected quality, expected error kind)
    "illegal_address": (Reply(exception=2), ("tcp", "rtu"), 4, "exception_2"),
    "device_failure": (Reply(exception=4), ("tcp", "rtu"), 4, "exception_4"),
    "busy": (Reply(exception=6), ("tcp",), 4, "exception_6"),
    "no_reply": (Reply(silent=True), ("tcp", "rtu"), 5, "timeout"),
    "bad_crc": (Reply(corrupt=True), ("rtu",), 5, "timeout"),
    "cut_frame": (Reply(corrupt=True), ("tcp",), 5, "truncated"),
    "dropped_connection": (Reply(drop_connection=True), ("tcp",), 5, "connection_lost"),
    "too_slow": (Reply(delay=1.0), ("tcp", "rtu"), 5, "timeout"),
}
CASES = [(name, t) for name, (_, transports, _, _) in FAULTS.items() for t in transports]


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("fault", "transport"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_each_fault_kind_becomes_a_quality_never_a_value(tmp_path: Path, fault: str,
                                                         transport: str) -> None:
    reply, _, quality, kind = FAULTS[fault]
    cfg, poller, source, slave, master = _setup(tmp_path, transport)
    try:
        with slave:
            source.fault = reply
            bad = _poll(cfg, poller)[0]
            source.fault = None
            # a reply that comes after the timeout is still on the line: the next poll, a period
            # later on site, must not meet it (on RS-485 it would pass for the next answer)
            time.sleep(reply.delay + 0.2)
            (good,) = _poll(cfg, poller)  # and the device is read again once it recovers
    finally:
        if master is not None:
            os.close(master)
    assert (bad.quality == quality).all() and np.isnan(bad.values).all()
    assert poller.stats.errors[kind] >= 1, dict(poller.stats.errors)
    assert (good.quality == 0).all()
    assert poller.stats.consecutive_failures == 0 and poller.stats.last_good is not None


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_slow_device_within_its_timeout_is_read(tmp_path: Path) -> None:
    cfg, poller, source, slave, _ = _setup(tmp_path, "tcp")
    with slave:
        source.fault = Reply(delay=0.2)  # a VW logger measuring on read: slow, not dead
        (batch,) = _poll(cfg, poller)
    assert (batch.quality == 0).all()
    assert poller.stats.latency_max >= 0.2
