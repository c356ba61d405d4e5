"""What the daemon records in the history store as it runs: the closed 5-minute windows of every
point (handed over by `gateway.telemetry.Telemetry`), each device's online state after every poll
(a row only when it changes, and at its first poll of each run), and the gateway's own running
time (a row per run, its last sign of life renewed every minute of clock time).
"""

from __future__ import annotations

import logging

from gateway.config.model import SiteConfig
from gateway.history.store import HistoryStore, month_start
from gateway.state_dir import StorageError, StorageGuard
from gateway.telemetry import Window

__all__ = ["HistoryRecorder"]

log = logging.getLogger("minewatch.history")

SEEN_EVERY_S = 60.0


class HistoryRecorder:
    def __init__(self, cfg: SiteConfig, store: HistoryStore):
        self.store = store
        self.online: dict[str, bool] = {}
        self._seen = float("-inf")
        self.set_config(cfg)

    @classmethod
    def open(cls, cfg: SiteConfig, guard: StorageGuard) -> HistoryRecorder | None:
        """The recorder, or None when the store is off or cannot even be opened (logged: the
        gateway runs on without it, and the monthly report shows the gap)."""
        h = cfg.history
        if h is None or not h.enabled:
            return None
        from zoneinfo import ZoneInfo

        try:
            store = HistoryStore(h.path, h.max_bytes, h.keep_months, guard=guard,
                                 tz=ZoneInfo(cfg.site.timezone))
        except StorageError as exc:
            log.error("history store not opened, the gateway runs without it: %s", exc,
                      extra={"event": "history_failed", "path": str(h.path)})
            return None
        log.info("history store %s: up to %d bytes, %d whole months kept", h.path, h.max_bytes,
                 h.keep_months, extra={"event": "history_opened", "path": str(h.path)})
        free = guard.free_bytes()
        if free is not None and free + store.used_bytes() < h.max_bytes:
            # not an error: the store grows slowly and the guard degrades at a full disk; but
            # the operator should know the months will not all fit
            log.warning("history store %s may grow to %d bytes for %d months, and its disk has "
                        "%d bytes free: make room, or put the store on a larger disk ([history] path)", h.path,
                        h.max_bytes, h.keep_months, free,
                        extra={"event": "history_room", "path": str(h.path)})
        return cls(cfg, store)

    def set_config(self, cfg: SiteConfig) -> None:
        """The points' names, quantities and units by index (again after a reload)."""
        self.names = [p.name for p in cfg.points]
        self.quantities = [p.quantity for p in cfg.points]
        self.units = [p.unit for p in cfg.points]
        if cfg.history is not None:
            self.store.max_bytes = cfg.history.max_bytes

    def on_window(self, w: Window) -> None:
        self.store.add_window(w.start, self.names, self.quantities, self.units, w.count,
                              w.samples, w.min, w.max, w.sum, w.quality)

    def on_poll(self, device: str, t: float, online: bool) -> None:
        if self.online.get(device) != online:
            self.online[device] = online
            self.store.device_online(device, t, online)

    def start(self, now: float) -> None:
        self.online.clear()
        self._seen = now
        self.store.run_started(now)

    def clock_stepped(self, jump: float, now: float) -> None:
        """A step of the wall clock ends the run at the time it left and starts the next at the
        time it landed on, so the month's running and online time count both parts (one run
        that ended before it started would count nothing after a step back)."""
        self.store.run_stopped(now - jump)
        self.store.flush()
        self.start(now)

    def tick(self, now: float) -> None:
        """Once a second: the sign of life, retention once a day, what waits for the disk."""
        if now - self._seen >= SEEN_EVERY_S:
            self._seen = now
            self.store.run_seen(now)
        self.store.prune(now)
        self.store.flush()

    def oldest_kept(self, now: float) -> float:
        return month_start(now, self.store.tz, back=self.store.keep_months)

    def stop(self, now: float) -> None:
        self.store.run_stopped(now)
        self.store.close()
