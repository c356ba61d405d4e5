"""Acquisition: one scheduler per bus polls its devices with planned reads and emits Batches.

Each bus has its own task and client, so a slow or dead device on one bus never delays another
bus; on a bus, polls are due on simulated-clock multiples of each device's period (its abnormal
period while one of its items is at blue or above, docs/requirements.md R7). A poll that starts after its
next due time counts as a missed deadline: that counter, not a wall-clock timing, is how
scheduling is judged. A device that fails `degrade_after` polls in a row is degraded: skipped for
`degrade_time`, then probed with a single attempt, so its timeouts stop costing the bus the
other devices' periods; the first good probe restores its schedule. A poll asked for out of
schedule (the platform's `measure` command) is queued into the bus's own task and made at the
bus's next free moment, so it never breaks a bus's one-request-at-a-time rule.

Every request goes through the one Modbus client (`gateway.modbus.client`), and every reply is
checked against its request (`gateway.modbus.replies`) before it is decoded. A
failed read marks the device's points `comm_fail` or `device_fault`, never a value; the values go
on as NaN so gaps are explained, not silent. Each failed request is counted by its kind:
`timeout` (no reply), `truncated` (part of a reply by the timeout: cut off, or dripping too
slowly), `malformed` (a reply that does not answer the request), `connection_lost` (the device
closed or reset the connection), `connect` (no connection) -> comm_fail; `exception_N` (the
device answered Modbus exception N) -> device_fault. A device's failure is logged once per new
reason (and at the 10th and every 100th failed poll in a row), never with a traceback.
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
from gateway.modbus.client import (
    ModbusFailure,
    connect,
    make_client,
    quiet_line,
    read_table,
    set_timeout,
)
from gateway.modbus.decode import DeviceDecoder
from gateway.modbus.planner import ReadRequest, plan_reads

__all__ = ["DevicePoller", "BusWorker", "DeviceStats", "PollInterrupted"]

log = logging.getLogger("minewatch.acquire")


@dataclass
class DeviceStats:
    polls: int = 0
    requests: int = 0
    errors: Counter = field(default_factory=Counter)  # failed requests (and flagged polls) by kind
    failed_polls: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    last_good: float | None = None
    consecutive_failures: int = 0
    missed_deadlines: int = 0
    degraded: bool = False
    probes: int = 0

    def as_dict(self) -> dict:
        return {"polls": self.polls, "requests": self.requests, "errors": dict(self.errors),
                "failed_polls": self.failed_polls,
                "latency_avg_ms": 1000 * self.latency_sum / max(1, self.requests),
                "latency_max_ms": 1000 * self.latency_max, "last_good": self.last_good,
                "consecutive_failures": self.consecutive_failures,
                "missed_deadlines": self.missed_deadlines, "degraded": self.degraded,
                "probes": self.probes}


class ReadFailure(Exception):
    """A request that gave no data: its quality, error kind, a stable reason and the detail."""

    def __init__(self, quality: int, kind: str, detail: str, reason: str = "",
                 line_dirty: bool = False):
        super().__init__(detail)
        self.quality = quality
        self.kind = kind
        self.reason = reason or kind
        self.line_dirty = line_dirty  # an RTU line must go quiet before a different request


class PollInterrupted(Exception):
    """An asked-for poll that the bus could not make: its task stopped (a reload, a stop)."""


def _step_since(clock: Clock, stepped: float) -> float:
    """What the wall clock was stepped by since it read `stepped`: a read time taken before a
    step seen during the reads is moved into the new time, where the daemon grades it."""
    clock.now()  # sees a step that happened during the reads
    return clock.stepped - stepped


class DevicePoller:
    """The read plan, decoder and converter of one device; `poll` gives one Batch."""

    def __init__(self, device: Device, cfg: SiteConfig):
        self.device = device
        self.bus = cfg.bus(device.bus)
        self.transport = self.bus.transport
        self._logged_reason: tuple[str, str] | None = None
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
        stepped = clock.stepped
        self.stats.probes += probe
        set_timeout(client, self.device.timeout)
        retries = 0 if probe else self.device.retries
        replies: list[np.ndarray] = []
        try:
            for k, req in enumerate(self.requests):
                if k and self.device.pause_between_requests:
                    await asyncio.sleep(self.device.pause_between_requests)
                replies.append(await self._read(client, req, retries))
        except ReadFailure as exc:
            self.stats.polls += 1  # counted when done, so polls and failed_polls always agree
            self.stats.failed_polls += 1
            self.stats.consecutive_failures += 1
            self._log_failure(exc)
            n = len(self.idx)
            t += _step_since(clock, stepped)
            return Batch(self.device.name, t, self.idx, np.full(n, np.nan),
                         np.full(n, exc.quality, dtype=np.uint8))
        self.stats.polls += 1
        self.stats.consecutive_failures = 0
        self._logged_reason = None
        t += _step_since(clock, stepped)
        self.stats.last_good = t
        reg_values, reg_ok = self.decoder.decode(replies)
        values, quality = self.converter.convert(reg_values, reg_ok, t)
        if self._fault_at.size:
            flags = reg_values[self._fault_at]
            if np.any(flags[np.isfinite(flags)] != 0):
                self.stats.errors["device_flag"] += 1
                quality = np.maximum(quality, Quality.DEVICE_FAULT).astype(np.uint8)
        conv = self.converter
        return Batch(self.device.name, t, self.idx, values, quality, conv.raw, conv.raw_aux,
                     conv.conditions)

    def _log_failure(self, exc: ReadFailure) -> None:
        """One line per new reason, then at the 10th and every 100th failed poll in a row."""
        n = self.stats.consecutive_failures
        reason = (exc.kind, exc.reason)
        if reason != self._logged_reason or n == 10 or n % 100 == 0:
            self._logged_reason = reason
            log.warning("device %s: %s (%d failed polls in a row)", self.device.name, exc, n,
                        extra={"event": "read_failed", "device": self.device.name,
                               "kind": exc.kind, "reason": exc.reason})

    async def _read(self, client, req: ReadRequest, retries: int) -> np.ndarray:
        failure = ReadFailure(Quality.COMM_FAIL, "timeout", "no reply")
        line_dirty = False  # RTU: a late reply to a failed attempt may still be on its way
        for attempt in range(retries + 1):
            if attempt:
                # exponential backoff with jitter, short: the bus is held meanwhile
                await asyncio.sleep(min(0.5, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
            try:
                values = await self._exchange(client, req)
            except ReadFailure as exc:
                self.stats.errors[exc.kind] += 1
                failure = exc
                # a retry repeats the identical request, so a late answer to an earlier attempt
                # is a right answer to it; what must never happen is a late reply answering the
                # next, different request: the line goes quiet once, after the last attempt
                line_dirty |= exc.line_dirty
                if exc.quality == Quality.DEVICE_FAULT or exc.kind == "connect":
                    break  # the device answered (or nothing is there): asking again is the same
                continue
            if line_dirty:
                await quiet_line(client, self.device.timeout)
            return values
        if line_dirty:
            await quiet_line(client, self.device.timeout)
        raise failure

    async def _exchange(self, client, req: ReadRequest) -> np.ndarray:
        """One request and its reply, checked against the request (gateway.modbus.client)."""
        if not client.connected:
            started = time.monotonic()
            # the CLI's own connect: an exception from the driver (a pseudo-terminal that
            # refuses a parity, an unplugged USB adapter) is a comm fault, never a dead bus task
            why = await connect(client, self.bus)
            if why is not None:
                raise ReadFailure(Quality.COMM_FAIL, "connect",
                                  f"cannot connect ({time.monotonic() - started:.1f} s): {why}")
            if self.device.pause_after_connect:
                await asyncio.sleep(self.device.pause_after_connect)
        started = time.monotonic()
        self.stats.requests += 1
        try:
            values = await read_table(client, self.device.unit, req.table, req.address,
                                      req.count)
        except ModbusFailure as exc:
            if exc.answered:
                self._latency(time.monotonic() - started)
            quality = Quality.DEVICE_FAULT if exc.exception_reply else Quality.COMM_FAIL
            raise ReadFailure(quality, exc.kind, str(exc), exc.reason, exc.line_dirty) from None
        self._latency(time.monotonic() - started)
        return np.asarray(values, dtype=np.uint8 if req.table in ("coil", "discrete")
                          else np.uint16)

    def _latency(self, seconds: float) -> None:
        self.stats.latency_sum += seconds
        self.stats.latency_max = max(self.stats.latency_max, seconds)


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
        self._asked: list[tuple[list[DevicePoller], asyncio.Future]] = []
        self._wake = asyncio.Event()

    def _standing_alone(self, poller: DevicePoller) -> bool:
        """Whether every other device on this bus is skipped (degraded). Skipping a failing
        device keeps the line's time for the others; the last one still polled is the line's
        probe. When it fails too the line itself may be down (a USB adapter pulled out, a DTU
        rebooting, a cut cable): skipped as well, nobody would notice the line come back for
        `degrade_time`, so it stays on its period, and once it answers the others are probed at
        once (`_line_back`)."""
        return all(q.stats.degraded for q in self.pollers if q is not poller)

    def _line_back(self, due: dict[int, float], now: float) -> None:
        """The last device polled answers again after failing: the line is back, so every
        skipped device is probed now rather than at the end of its `degrade_time`."""
        skipped = [q for q in self.pollers if q.stats.degraded]
        if skipped:
            log.info("bus %s answers again: probing its %d skipped devices now", self.bus.name,
                     len(skipped), extra={"event": "line_restored", "bus": self.bus.name})
        for q in skipped:
            due[id(q)] = min(due[id(q)], now)

    def poll_now(self, pollers: list[DevicePoller]) -> asyncio.Future:
        """Poll these devices of this bus now, out of schedule: after the poll in progress (one
        request at a time on a bus), before the next scheduled one. The future gets their
        Batches, each already handed to `on_batch`; PollInterrupted when the bus task stops."""
        fut = asyncio.get_running_loop().create_future()
        self._asked.append((pollers, fut))
        self._wake.set()
        return fut

    async def _sleep_until(self, t: float) -> bool:
        """Wait for the clock to read `t`; False when a poll was asked for meanwhile."""
        if self._asked:
            return False
        self._wake.clear()
        sleeper = asyncio.ensure_future(self.clock.sleep_until(t))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        return not self._asked

    async def _poll_asked(self) -> None:
        while self._asked:
            pollers, fut = self._asked[0]  # stays listed until done: a stop fails it
            batches = []
            for poller in pollers:
                batch = await poller.poll(self.client, self.clock, probe=poller.stats.degraded)
                self.on_batch(batch)
                batches.append(batch)
            self._asked.pop(0)
            if not fut.done():
                fut.set_result(batches)

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
                if not await self._sleep_until(t_due):
                    await self._poll_asked()
                    continue
                st = poller.stats
                was_failing = st.consecutive_failures > 0
                batch = await poller.poll(self.client, self.clock, probe=st.degraded)
                self.on_batch(batch)
                dev = poller.device
                period = self.period_of(dev)
                now = self.clock.now()
                if was_failing and st.consecutive_failures == 0 and not st.degraded \
                        and self._standing_alone(poller):
                    self._line_back(due, now)
                if st.consecutive_failures == 0 and st.degraded:
                    st.degraded = False
                    log.info("device %s answers again; back on its %g s period", dev.name,
                             period, extra={"event": "device_restored", "device": dev.name})
                elif dev.degrade_after and st.consecutive_failures >= dev.degrade_after and (
                        st.degraded or not self._standing_alone(poller)):
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
            for _, fut in self._asked:
                if not fut.done():
                    fut.set_exception(PollInterrupted(f"bus {self.bus.name} stopped"))
            self._asked.clear()
            if self.client is not None:
                self.client.close()
            if port_lock is not None:
                port_lock.release()  # a SIGHUP reload takes it again in this same process
