"""Acquisition: one scheduler per bus polls its devices with planned reads and emits Batches.

Each bus has its own task and client, so a slow or dead device on one bus never delays another
bus; on a bus, polls are due on simulated-clock multiples of each device's period (its abnormal
period while one of its items is at blue or above, docs/requirements.md R7). A poll that starts after its
next due time counts as a missed deadline: that counter, not a wall-clock timing, is how
scheduling is judged. A device that fails `degrade_after` polls in a row is degraded: skipped for
`degrade_time`, then probed with a single attempt, so its timeouts stop costing the bus the
other devices' periods; the first good probe restores its schedule. A failed read marks the device's points `comm_fail` (no answer) or
`device_fault` (an exception reply); the values go on as NaN so gaps are explained, not silent.
The gateway only reads: no code path here writes to a field device.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from detectors.base import Quality
from gateway.batch import Batch
from gateway.clock import Clock
from gateway.config.model import Bus, Device, SiteConfig
from gateway.convert import DeviceConverter
from gateway.modbus.decode import DeviceDecoder
from gateway.modbus.planner import ReadRequest, plan_reads

__all__ = ["DevicePoller", "BusWorker", "DeviceStats", "make_client"]

log = logging.getLogger("minewatch.acquire")


@dataclass
class DeviceStats:
    polls: int = 0
    requests: int = 0
    errors: Counter = field(default_factory=Counter)
    latency_sum: float = 0.0
    latency_max: float = 0.0
    last_good: float | None = None
    consecutive_failures: int = 0
    missed_deadlines: int = 0
    degraded: bool = False
    probes: int = 0

    def as_dict(self) -> dict:
        return {"polls": self.polls, "requests": self.requests, "errors": dict(self.errors),
                "latency_avg_ms": 1000 * self.latency_sum / max(1, self.requests),
                "latency_max_ms": 1000 * self.latency_max, "last_good": self.last_good,
                "consecutive_failures": self.consecutive_failures,
                "missed_deadlines": self.missed_deadlines, "degraded": self.degraded,
                "probes": self.probes}


class ReadFailure(Exception):
    def __init__(self, quality: int, kind: str, detail: str):
        super().__init__(detail)
        self.quality = quality
        self.kind = kind


def make_client(bus: Bus):
    """A pymodbus 3.x async client for the bus; reconnecting is ours to schedule, not pymodbus's."""
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
    from pymodbus.framer import FramerType

    common = {"timeout": bus.timeout, "retries": 0}
    if bus.transport == "tcp":
        return AsyncModbusTcpClient(bus.host, port=bus.port, reconnect_delay=0, **common)
    if bus.transport == "rtu_over_tcp":
        return AsyncModbusTcpClient(bus.host, port=bus.port, framer=FramerType.RTU,
                                    reconnect_delay=0, **common)
    return AsyncModbusSerialClient(bus.serial_port, framer=FramerType.RTU, baudrate=bus.baudrate,
                                   parity=bus.parity, stopbits=bus.stopbits,
                                   bytesize=bus.bytesize, reconnect_delay=0, **common)


class DevicePoller:
    """The read plan, decoder and converter of one device; `poll` gives one Batch."""

    def __init__(self, device: Device, cfg: SiteConfig):
        self.device = device
        self.points = [p for p in cfg.points if p.device == device.name]
        needed = {p.channel for p in self.points}
        # the device's own fault flags (a gas head's sensor fault, warm-up): read with the values,
        # and while one is set the device's values are device_fault, never graded
        self.fault_registers = [r.name for r in device.profile.registers if r.role == "fault"]
        if self.points:
            needed.update(self.fault_registers)
        for p in self.points:
            for key in ("temperature_channel", "y_channel"):
                if p.conversion.params.get(key):
                    needed.add(p.conversion.params[key])
        # word order: a point's override, else the device's, else the profile's
        point_order = {p.channel: p.word_order for p in self.points if p.word_order}
        profile_registers = [
            replace(r, word_order=point_order.get(r.name) or device.word_order or r.word_order)
            for r in device.profile.registers]
        registers = [r for r in profile_registers if r.name in needed]
        # the profile's registers let the planner add a value's "decimal places" register
        self.requests: list[ReadRequest] = plan_reads(
            registers, max_read=device.max_read, max_gap=device.max_gap,
            profile_registers=profile_registers)
        self.decoder = DeviceDecoder(self.requests)
        self.converter = DeviceConverter(device, self.points, self.decoder.register_index)
        self.idx = self.converter.idx
        self._fault_at = np.array([self.decoder.register_index[n] for n in self.fault_registers
                                   if n in self.decoder.register_index], dtype=np.int64)
        self.stats = DeviceStats()

    async def poll(self, client, clock: Clock, probe: bool = False) -> Batch:
        """One poll; a probe of a degraded device reads once, with no retries."""
        t = clock.now()
        self.stats.polls += 1
        self.stats.probes += probe
        _set_timeout(client, self.device.timeout)
        retries = 0 if probe else self.device.retries
        replies: list[np.ndarray] = []
        try:
            for k, req in enumerate(self.requests):
                if k and self.device.pause_between_requests:
                    await asyncio.sleep(self.device.pause_between_requests)
                replies.append(await self._read(client, req, retries))
        except ReadFailure as exc:
            self.stats.errors[exc.kind] += 1
            self.stats.consecutive_failures += 1
            if self.stats.consecutive_failures in (1, 10) or self.stats.consecutive_failures % 100 == 0:
                log.warning("device %s: %s (%d failed polls in a row)", self.device.name, exc,
                            self.stats.consecutive_failures,
                            extra={"event": "read_failed", "device": self.device.name,
                                   "kind": exc.kind})
            n = len(self.idx)
            return Batch(self.device.name, t, self.idx, np.full(n, np.nan),
                         np.full(n, exc.quality, dtype=np.uint8))
        self.stats.consecutive_failures = 0
        self.stats.last_good = t
        reg_values, reg_ok = self.decoder.decode(replies)
        values, quality = self.converter.convert(reg_values, reg_ok, t)
        if self._fault_at.size:
            flags = reg_values[self._fault_at]
            if np.any(flags[np.isfinite(flags)] != 0):
                self.stats.errors["device_flag"] += 1
                quality = np.maximum(quality, Quality.DEVICE_FAULT).astype(np.uint8)
        return Batch(self.device.name, t, self.idx, values, quality)

    async def _read(self, client, req: ReadRequest, retries: int) -> np.ndarray:
        from pymodbus.exceptions import ModbusException

        unit = self.device.unit
        last = "no reply"
        for attempt in range(retries + 1):
            if attempt:
                # exponential backoff with jitter, short: the bus is held meanwhile
                await asyncio.sleep(min(0.5, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
            if not client.connected:
                started = time.monotonic()
                if not await client.connect():
                    raise ReadFailure(Quality.COMM_FAIL, "connect",
                                      f"cannot connect ({time.monotonic() - started:.1f} s)")
                if self.device.pause_after_connect:
                    await asyncio.sleep(self.device.pause_after_connect)
            started = time.monotonic()
            self.stats.requests += 1
            try:
                if req.table == "holding":
                    rr = await client.read_holding_registers(req.address, count=req.count,
                                                             device_id=unit)
                elif req.table == "input":
                    rr = await client.read_input_registers(req.address, count=req.count,
                                                           device_id=unit)
                elif req.table == "coil":
                    rr = await client.read_coils(req.address, count=req.count, device_id=unit)
                else:
                    rr = await client.read_discrete_inputs(req.address, count=req.count,
                                                           device_id=unit)
            except ModbusException as exc:
                last = f"no valid reply to FC{req.function_code} @{req.address}x{req.count}: {exc}"
                self.stats.errors["timeout"] += 1
                continue
            latency = time.monotonic() - started
            self.stats.latency_sum += latency
            self.stats.latency_max = max(self.stats.latency_max, latency)
            if rr.isError():
                code = getattr(rr, "exception_code", 0)
                raise ReadFailure(Quality.DEVICE_FAULT, f"exception_{code}",
                                  f"exception {code} to FC{req.function_code} register "
                                  f"{req.address} count {req.count}")
            if req.table in ("coil", "discrete"):
                return np.asarray(rr.bits[: req.count], dtype=np.uint8)
            return np.asarray(rr.registers, dtype=np.uint16)
        raise ReadFailure(Quality.COMM_FAIL, "timeout", last)


def _set_timeout(client, seconds: float) -> None:
    """Per-device request timeout on a shared bus client. pymodbus 3.x reads the timeout from the
    transaction manager's own copy of the comm params at every request (`ctx` on the async
    clients, `transaction` on the sync ones), so every copy is set."""
    client.comm_params.timeout_connect = seconds
    for name in ("ctx", "transaction"):
        manager = getattr(client, name, None)
        if manager is not None and hasattr(manager, "comm_params"):
            manager.comm_params.timeout_connect = seconds


class BusWorker:
    """Polls the devices of one bus on their schedules and hands each Batch to `on_batch`."""

    def __init__(self, bus: Bus, pollers: list[DevicePoller], clock: Clock,
                 on_batch: Callable[[Batch], None], period_of: Callable[[Device], float]):
        self.bus = bus
        self.pollers = pollers
        self.clock = clock
        self.on_batch = on_batch
        self.period_of = period_of
        self.client = None

    async def run(self) -> None:
        from gateway.serial_lock import hold_bus_port

        # the CLI (scan, read, write) never talks on this serial line while the daemon does
        port_lock = await hold_bus_port(self.bus)
        self.client = make_client(self.bus)
        now = self.clock.now()
        # a first poll at once (a restarted gateway must not wait a period to see the site),
        # then due times on multiples of each period, so devices of one period poll together
        due = {id(p): now for p in self.pollers}
        jumps = self.clock.jumps
        try:
            while True:
                if self.clock.jumps != jumps:
                    # the wall clock was stepped (NTP after boot, an operator): due times from
                    # before the step would stall the bus (step back) or count phantom missed
                    # deadlines (step forward), so the schedule restarts from the new time
                    jumps = self.clock.jumps
                    now = self.clock.now()
                    due = {id(p): now for p in self.pollers}
                poller = min(self.pollers, key=lambda p: due[id(p)])
                t_due = due[id(poller)]
                await self.clock.sleep_until(t_due)
                st = poller.stats
                batch = await poller.poll(self.client, self.clock, probe=st.degraded)
                self.on_batch(batch)
                dev = poller.device
                period = self.period_of(dev)
                now = self.clock.now()
                if st.consecutive_failures == 0 and st.degraded:
                    st.degraded = False
                    log.info("device %s answers again; back on its %g s period", dev.name,
                             period, extra={"event": "device_restored", "device": dev.name})
                elif dev.degrade_after and st.consecutive_failures >= dev.degrade_after:
                    if not st.degraded:
                        st.degraded = True
                        log.warning("device %s failed %d polls in a row: skipped for %g s, then "
                                    "probed, so the other devices on bus %s keep their periods",
                                    dev.name, st.consecutive_failures, dev.degrade_time,
                                    self.bus.name, extra={"event": "device_degraded",
                                                          "device": dev.name})
                    due[id(poller)] = max(now, t_due) + dev.degrade_time
                    continue
                nxt = math.floor(t_due / period + 1e-9) * period + period
                if self.clock.jumps != jumps:
                    continue  # stepped during the poll: the top of the loop reschedules
                if nxt <= now:
                    skipped = math.floor((now - nxt) / period) + 1
                    st.missed_deadlines += skipped
                    nxt += skipped * period
                due[id(poller)] = nxt
        finally:
            if self.client is not None:
                self.client.close()
            if port_lock is not None:
                port_lock.release()  # a SIGHUP reload takes it again in this same process
