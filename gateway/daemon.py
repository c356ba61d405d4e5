"""The gateway daemon: wires acquire -> detect -> grade -> publish and runs it until told to stop.

One asyncio process: a task per bus polls, each Batch goes through the detectors and the alert
engine synchronously (both are fast, and doing it inline keeps events in sample order), events
are committed to the outbox before anything is sent, and the MQTT publishers (one per northbound
target, `gateway/uplink/targets.py`) drain the outbox.
On SIGTERM or SIGINT it stops polling, gives the publisher a few seconds to deliver what is
pending (what is not delivered stays in the outbox for the next start), checkpoints the detectors
and says "offline" on the status topic.

With `[commands] enabled` it takes the platform's requests (`gateway/commands/`): the command
service answers them, and every second the loop ends the maintenance windows whose time came,
publishes the reminders of unacknowledged alerts and judges a pushed config on probation.
Changing the config (SIGHUP, a pushed config, a rollback) is `gateway/reconfigure.py`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from gateway.acquire import BusWorker, DevicePoller
from gateway.alerts.acknowledge import Acknowledgements
from gateway.alerts.encoder import topic
from gateway.alerts.engine import AlertEngine
from gateway.alerts.storage_fault import StorageFault
from gateway.batch import Batch
from gateway.clock import MIN_REAL_PERIOD, Clock
from gateway.config.model import Device, SiteConfig
from gateway.daemon_records import GatewayRecords
from gateway.derive import FormulaPoints
from gateway.detect import DetectStage
from gateway.health import GatewayHealth
from gateway.maintenance import Maintenance
from gateway.outbox import Outbox
from gateway.reconfigure import Reconfigure, threshold_snapshot
from gateway.state_dir import StorageGuard
from gateway.state_files import secure_state
from gateway.systemd import SystemdNotifier
from gateway.telemetry import Telemetry

__all__ = ["Gateway", "gateway_version"]

log = logging.getLogger("minewatch.daemon")


def gateway_version() -> str:
    try:
        return version("minewatch")
    except PackageNotFoundError:
        return "0+source"


class Gateway(GatewayHealth, Reconfigure, GatewayRecords):
    def __init__(self, cfg: SiteConfig, clock: Clock, drain_timeout: float = 5.0):
        self.clock = clock
        self.drain_timeout = drain_timeout
        self._check_scale(cfg)
        secure_state(cfg)  # state dir 0750, files 0640: the outbox holds the site's alerts
        # one watch over every writer of state: a full or read-only disk degrades, never crashes
        self.storage = StorageGuard(cfg.gateway.state_dir, cfg.outbox.reserve_bytes)
        self.storage.ensure_reserve()
        from gateway.uplink.targets import outbox_targets

        # one outbox, drained by every northbound target at its own pace
        self.outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes, guard=self.storage,
                             hold_max_bytes=cfg.outbox.hold_max_bytes,
                             targets=outbox_targets(cfg))
        self.prefix = cfg.mqtt.prefix if cfg.mqtt else "minewatch/v1"
        # a backlog written under another prefix follows this one (the first target's)
        self.outbox.settle_home(topic(self.prefix, cfg.site.code, cfg.gateway.id, ""))
        self.storage_fault = StorageFault(cfg, self.outbox, self.prefix)
        self._open_records(cfg)  # history store, manual readings, the monthly report
        self.publisher = None
        if cfg.mqtt is not None:
            from gateway.uplink.targets import Uplinks
            self.publisher = Uplinks(cfg, self.outbox, clock.now, gateway_version())
            if cfg.commands.enabled:  # results go back where the commands come from
                self.outbox.results_target = cfg.mqtt.name
        self.health_topic = topic(self.prefix, cfg.site.code, cfg.gateway.id, "health")
        self.health_period = 60.0  # R9: a heartbeat with per-device online state every 60 s
        self.started = clock.now()
        self._stepped = clock.stepped  # the clock's steps this gateway has followed
        self.version = gateway_version()
        self.batches = 0
        self.reloads = 0
        self.detector_seconds = 0.0
        self.event_counts: Counter = Counter()
        self.http = None
        self.stop_event = asyncio.Event()
        self._workers: list[asyncio.Task] = []
        self.bus_workers: dict[str, BusWorker] = {}
        self.busy = asyncio.Lock()  # a reload and an asked-for poll never overlap
        self.maintenance = Maintenance(self.outbox)
        self.probation = None
        self.polling = False
        self.last_rollback: dict | None = None
        self._broker_seen = False
        self._trial: asyncio.Task | None = None
        self.commands = None
        if cfg.commands.enabled and self.publisher is not None:
            from gateway.commands.service import CommandService
            self.commands = CommandService(self, cfg)
        self.sink = None
        if cfg.influx is not None:
            from gateway.storage.influx import InfluxSink
            self.sink = InfluxSink(cfg, cfg.influx, self.storage)
        self._build(cfg)

    def _check_scale(self, cfg: SiteConfig) -> None:
        shortest = min((d.abnormal_period for d in cfg.devices), default=None)
        if shortest is not None and shortest / self.clock.scale < MIN_REAL_PERIOD:
            raise ValueError(
                f"time scale {self.clock.scale:g} makes the shortest poll period ({shortest:g} s "
                f"simulated) {1000 * shortest / self.clock.scale:.0f} ms of real time; the cap is "
                f"{1000 * MIN_REAL_PERIOD:.0f} ms: use a time scale of at most "
                f"{shortest / MIN_REAL_PERIOD:g}")

    def _build(self, cfg: SiteConfig, previous: DetectStage | None = None,
               by: str | None = None) -> None:
        """The config-dependent part of the pipeline (rebuilt on reload; outbox and uplink stay)."""
        self.cfg = cfg
        self.maintenance.bind(cfg)
        self.engine = AlertEngine(cfg, self.outbox, self.prefix)
        self.engine.maintenance = self.maintenance
        self.acks = Acknowledgements(self.engine, self.outbox, cfg.commands,
                                     self.storage_fault.open_alert)
        if self.sink is not None:
            self.acks.on_committed = self.sink.add_events
        self.detect = DetectStage(cfg, cfg.gateway.state_dir / "detectors.npz",
                                  restore=previous is None)
        if previous is not None:
            self.detect.transfer(previous)
        self.detect.reconcile(self.engine.level)
        from gateway.detector_notes import point_notes
        from gateway.sampling_rules import sampling_warnings

        for w in sampling_warnings(cfg):  # periods the standards advise against, said once
            log.warning("%s", w.line(), extra={"event": "sampling_warning", "device": w.device})
        for n in point_notes(cfg):  # what the detectors can judge at these cadences, said once
            log.log(logging.INFO if n.note.judges else logging.WARNING, "%s", n.text(),
                    extra={"event": "detector_cadence", "point": n.point,
                           "detector": n.note.detector, "judges": n.note.judges})
        self.threshold_changes = self.outbox.audit_thresholds(threshold_snapshot(cfg),
                                                              self.clock.now(), by)
        for entry in self.threshold_changes:
            log.warning("thresholds of %s changed by %s: %s -> %s", entry["subject"],
                        by or "the config file", entry["before"], entry["after"],
                        extra={"event": "audit_thresholds", "point": entry["subject"], "by": by})
        self.pollers = {d.name: DevicePoller(d, cfg) for d in cfg.devices}
        quantities = sorted({p.quantity for p in cfg.points})
        self._item_masks = {q: np.array([p.quantity == q for p in cfg.points]) for q in quantities}
        self._device_items = {d.name: {p.quantity for p in cfg.points if p.device == d.name}
                              for d in cfg.devices}
        self.telemetry = Telemetry(cfg, topic(self.prefix, cfg.site.code, cfg.gateway.id,
                                              "telemetry"), on_window=self._records_window)
        self.telemetry.maintenance = self.maintenance
        if self.history is not None:
            self.history.set_config(cfg)
        self.formulas = FormulaPoints(cfg)
        if self.sink is not None:
            self.sink.set_points(cfg)
        # the kernels are loaded: LLVM's pages go back until a reload needs them
        from gateway.memory import release_llvm_pages

        release_llvm_pages()

    def abnormal_items(self) -> set[str]:
        """Items (quantities) with a point at blue or above: their devices poll faster (R7)."""
        level = self.engine.level
        return {q for q, mask in self._item_masks.items() if mask.any() and level[mask].max() > 0}

    def period_of(self, device: Device) -> float:
        if self._device_items[device.name] & self.abnormal_items():
            return device.abnormal_period
        return device.period

    def on_batch(self, batch: Batch) -> None:
        self.follow_clock()
        self.batches += 1
        if self.batches == 1:
            log.info("first values read and graded", extra={"event": "first_values",
                                                             "device": batch.device})
        self._records_poll(batch)
        batch = self.formulas.correct(batch)
        self._process(batch)
        derived = self.formulas.update(batch)
        if derived is not None:
            self._process(derived)

    def follow_clock(self) -> None:
        """After a step of the wall clock, move what holds wall times that measure a duration:
        detector time, the reminders' schedule, the telemetry windows, the re-sends of
        unconfirmed events, the history store's run, the uptime (docs/contracts.md, "A step of
        the wall clock"). Called before each batch is recorded and graded, so no sample is
        graded across a step unseen."""
        jump = self.clock.stepped - self._stepped
        if not jump:
            return
        self._stepped = self.clock.stepped
        self.started += jump
        self.detect.clock_stepped(jump)
        self.acks.clock_stepped(jump)
        self.telemetry.clock_stepped(jump)
        self.outbox.clock_stepped(jump)
        if self.history is not None:
            self.history.clock_stepped(jump, self.clock.now())

    def _process(self, batch: Batch) -> None:
        started = time.perf_counter()
        verdict = self.detect.process(batch)
        self.detector_seconds += time.perf_counter() - started
        # one quality per sample everywhere: a detector's fault verdict (a stuck or implausible
        # sensor) is merged before telemetry, the database and the alert engine see the sample
        batch = replace(batch, quality=verdict.quality)
        self.telemetry.add(batch)
        if self.sink is not None:
            self.sink.add_batch(batch)
        events = self.engine.process(batch.t, batch.idx, batch.values, verdict.quality, verdict,
                                     batch.conditions)
        for ev in events:
            self.event_counts[(ev["kind"], ev["state"], ev["level"])] += 1
        if events and self.sink is not None:
            self.sink.add_events(events)
        if events:
            # a state change: checkpoint the detectors too, so a crash right after it restarts
            # from the state that produced it
            self.checkpoint()
            if self.publisher is not None:
                self.publisher.notify()

    def checkpoint(self) -> None:
        """Save the detectors' state, unless the disk needs its room for alerts (a restart then
        continues from an older checkpoint, reconciled with the committed alert state)."""
        path = self.detect.checkpoint
        if path is None or not self.storage.may_write(path):
            return
        try:
            self.detect.save()
        except OSError as exc:
            self.storage.failed(path, exc)
            return
        self.storage.wrote(path)

    def _storage_tick(self, now: float) -> None:
        """Once a second: commit what the disk refused before, put the reserve back when there
        is room, and tell the platform when the state directory turns bad or good."""
        self.storage.check_space()
        if self.storage.kind is not None or self.outbox.hold:
            self.outbox.flush()
            # the reserve comes back as soon as the disk has room for it twice over, whatever
            # still fails: a writer that failed (the history store) may not write again while
            # the reserve is out, so waiting for it to succeed first would wait for ever
            if self.storage.released:
                self.storage.ensure_reserve()
            if not self.storage.paused():
                self.outbox.flush()  # the telemetry that waited
        events = self.storage_fault.update(now, self.storage)
        for ev in events:
            self.event_counts[(ev["kind"], ev["state"], ev["level"])] += 1
        if events and self.publisher is not None:
            self.publisher.notify()

    def _start_workers(self) -> None:
        for bus in self.cfg.buses:
            pollers = [self.pollers[d.name] for d in self.cfg.devices if d.bus == bus.name]
            if pollers:
                w = BusWorker(bus, pollers, self.clock, self.on_batch, self.period_of)
                self.bus_workers[bus.name] = w
                self._workers.append(asyncio.create_task(w.run(), name=f"bus:{bus.name}"))

    async def _stop_workers(self) -> None:
        """Cancel the bus tasks and wait for them. A cancel can be lost inside a library's
        `wait_for` when it arrives together with a reply (Python 3.11), and the task polls on:
        so it is cancelled again until it is done, and a stop or a reload never hangs."""
        pending = set(self._workers)
        while pending:
            for w in pending:
                w.cancel()
            done, pending = await asyncio.wait(pending, timeout=1.0)
            for task in done:  # a bus task that died is logged where it died; collect it
                if not task.cancelled():
                    task.exception()
            if pending:
                log.warning("%d bus task(s) still running after a cancel; cancelling again",
                            len(pending), extra={"event": "stop_retry"})
        self._workers = []
        self.bus_workers = {}

    def _commands_tick(self, now: float) -> None:
        """Once a second: windows that ended, reminders that are due, a config on trial (its
        rollback runs beside the loop: it waits for an asked-for poll to finish)."""
        if self.maintenance.expire(now):
            self.engine.maintenance_ended()
        reminders = self.acks.tick(now)
        for ev in reminders:
            self.event_counts[(ev["kind"], ev["state"], ev["level"])] += 1
        if reminders and self.publisher is not None:
            self.publisher.notify()
        if self.probation is not None and (self._trial is None or self._trial.done()):
            self._trial = asyncio.create_task(self.probation_tick(), name="probation")

    async def run(self, duration: float | None = None) -> None:
        """Run until stopped (signal or `stop()`), or for `duration` seconds of clock time."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        reloads: list[asyncio.Task] = []
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP,
                                    lambda: reloads.append(asyncio.create_task(self.reload())))
        tasks: list[asyncio.Task] = []
        await self.resume_probation()
        if self.commands is not None:
            self.commands.start()
        if self.publisher is not None:
            await self.publisher.start()
            tasks.append(asyncio.create_task(self.publisher.run(), name="mqtt"))
        if self.sink is not None:
            tasks.append(asyncio.create_task(self.sink.run(), name="sink"))
        if self.history is not None:
            self.history.start(self.clock.now())
        self.polling = True
        self._start_workers()
        self._start_http()
        notifier = SystemdNotifier()
        notifier.ready(f"polling {len(self.cfg.devices)} devices")
        log.info("gateway %s of site %s running: %d buses, %d devices, %d points (config %s "
                 "read as %s)", self.cfg.gateway.id, self.cfg.site.code, len(self._workers),
                 len(self.cfg.devices), len(self.cfg.points), self.cfg.path, self.cfg.encoding,
                 extra={"event": "started", "config_encoding": self.cfg.encoding})
        end = self.clock.now() + duration if duration is not None else None
        next_health = self.clock.now()
        last_save = last_storage = loop.time()
        jumps = self.clock.jumps
        try:
            while not self.stop_event.is_set():
                now = self.clock.now()
                if self.clock.jumps != jumps:  # a wall-clock step: heartbeat on the new time
                    jumps = self.clock.jumps
                    next_health = min(next_health, now)
                    self.follow_clock()
                if end is not None and now >= end:
                    break
                notifier.keep_alive()
                messages = self.telemetry.due(now)
                if messages:
                    self.outbox.add_telemetry(messages)
                    if self.publisher is not None:
                        self.publisher.notify()
                if now >= next_health:
                    self._heartbeat(now)
                    next_health = now + self.health_period
                if loop.time() - last_save > 60.0:
                    self.checkpoint()
                    last_save = loop.time()
                if loop.time() - last_storage >= 1.0:
                    self._storage_tick(now)
                    self._commands_tick(now)
                    self._records_tick(now)
                    last_storage = loop.time()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):  # not wait_for: see uplink/mqtt.py run
                        await self.stop_event.wait()
                for w in self._workers:
                    if w.done() and not w.cancelled() and w.exception() is not None:
                        raise w.exception()  # a bus task must never die silently
        finally:
            notifier.stopping()
            await asyncio.gather(*reloads, return_exceptions=True)
            if self.commands is not None:
                await self.commands.stop()
            if self._trial is not None:
                await asyncio.gather(self._trial, return_exceptions=True)
            await self._stop_workers()
            await self._shutdown(tasks)

    def _start_http(self) -> None:
        if self.cfg.gateway.listen is None:
            return
        from gateway.status_http import StatusServer

        host, port = self.cfg.gateway.listen
        try:
            self.http = StatusServer(self, host, port)
        except OSError as exc:
            log.error("status endpoint %s:%d not started: %s; the gateway runs without it", host,
                      port, exc.strerror or exc, extra={"event": "http_failed"})
            return
        self.http.start()

    async def _shutdown(self, tasks: list[asyncio.Task]) -> None:
        if self.publisher is not None:
            # pending alerts get a few seconds; with receipts, until the platform has them
            deadline = loop_time() + self.drain_timeout
            while self.publisher.pending() and loop_time() < deadline:
                await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.sink is not None:
            # what the database does not take now stays in the spool for the next start
            if not await self.sink.flush(self.drain_timeout):
                log.warning("%d lines for the database stay in the spool",
                            self.sink.backlog(), extra={"event": "sink_backlog_at_stop"})
            self.sink.close()
        await self._records_stop(self.clock.now())
        self.checkpoint()
        if self.publisher is not None:
            await self.publisher.stop()
        if self.http is not None:
            self.http.stop()
        for name, poller in self.pollers.items():
            log.info("device %s: %s", name, poller.stats.as_dict(),
                     extra={"event": "device_stats", "device": name, **poller.stats.as_dict()})
        depth = self.outbox.depth()
        log.info("gateway stopped; %d events and %d telemetry messages wait in the outbox",
                 depth["events"], depth["telemetry"], extra={"event": "stopped", **depth})
        self.outbox.close()

    def _heartbeat(self, now: float) -> None:
        if self.publisher is None and self.sink is None:
            return
        health = self.health(now)
        if self.publisher is not None:
            self.publisher.publish_all(self.health_topic, health)
        if self.sink is not None:
            self.sink.add_health(health)

    def stop(self) -> None:
        self.stop_event.set()


def loop_time() -> float:
    return asyncio.get_running_loop().time()
