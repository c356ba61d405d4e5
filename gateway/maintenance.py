"""Maintenance windows: points a field engineer is working on, set by the platform's
`maintenance` command (docs/commands.md#maintenance).

A point in maintenance (named itself, or through its device) is still polled, graded and
reported, and its telemetry says `"maintenance": true`; but it raises no safety alert: the alert
engine publishes no change of its level until the window ends, when the level its detectors then
give is published like any other change. Its faults are still published, carrying the window
(`maintenance` in the event), and are never escalated toward the repair limit. A window ends by
itself at `until` (clock time) or when a request ends it; it survives a restart (the outbox's
`maintenance` table), and the status and health documents list it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gateway.alerts.encoder import time_fields
from gateway.config.model import SiteConfig

__all__ = ["Maintenance", "Window"]

log = logging.getLogger("minewatch.maintenance")


@dataclass(frozen=True)
class Window:
    subject: str  # "point:<name>" or "device:<name>"
    since: float
    until: float
    by: str
    reason: str
    command_id: str | None = None

    @property
    def kind(self) -> str:
        return self.subject.partition(":")[0]

    @property
    def name(self) -> str:
        return self.subject.partition(":")[2]

    def as_dict(self) -> dict:
        return {self.kind: self.name, **time_fields("since", self.since),
                **time_fields("until", self.until), "by": self.by, "reason": self.reason,
                "command_id": self.command_id}


class Maintenance:
    def __init__(self, outbox):
        self.outbox = outbox
        self.windows: dict[str, Window] = {w[0]: Window(*w) for w in outbox.maintenance_windows()}
        self.cfg: SiteConfig | None = None
        self.until = np.zeros(0)  # per point: the end of the window it is in (-inf: none)
        self._window_of: list[Window | None] = []

    def bind(self, cfg: SiteConfig) -> None:
        """Which points each window covers, in this config (a reload rebinds)."""
        self.cfg = cfg
        self._cover()

    def _cover(self) -> None:
        cfg = self.cfg
        if cfg is None:
            return
        self.until = np.full(len(cfg.points), -np.inf)
        self._window_of = [None] * len(cfg.points)
        for w in self.windows.values():
            for p in cfg.points:
                covers = (w.kind == "point" and p.name == w.name) or \
                    (w.kind == "device" and p.device == w.name)
                if covers and w.until > self.until[p.index]:
                    self.until[p.index] = w.until
                    self._window_of[p.index] = w

    @property
    def any(self) -> bool:
        return bool(self.windows)

    def held(self, idx: np.ndarray, t: float) -> np.ndarray:
        """Per point of `idx`: in a maintenance window at time `t`."""
        return self.until[idx] > t

    def window_of(self, i: int, t: float) -> Window | None:
        w = self._window_of[i] if i < len(self._window_of) else None
        return w if w is not None and w.until > t else None

    def start(self, subjects: list[str], since: float, until: float, by: str, reason: str,
              command_id: str | None) -> list[Window]:
        """Put `subjects` in maintenance until `until` (replacing a window they had)."""
        new = [Window(s, since, until, by, reason, command_id) for s in subjects]
        for w in new:
            self.windows[w.subject] = w
        self.outbox.save_maintenance([(w.subject, w.since, w.until, w.by, w.reason,
                                       w.command_id) for w in new], [])
        self._cover()
        for w in new:
            log.warning("%s %s in maintenance until %s by %s: %s", w.kind, w.name,
                        w.as_dict()["until_iso"], by, reason,
                        extra={"event": "maintenance_started", "subject": w.subject, "by": by})
        return new

    def end(self, subjects: list[str], now: float, why: str) -> list[Window]:
        """End these windows now (a request, or their time came)."""
        ended = [self.windows.pop(s) for s in subjects if s in self.windows]
        if ended:
            self.outbox.save_maintenance([], [w.subject for w in ended])
            self._cover()
        for w in ended:
            log.warning("%s %s out of maintenance (%s)", w.kind, w.name, why,
                        extra={"event": "maintenance_ended", "subject": w.subject, "why": why})
        return ended

    def expire(self, now: float) -> list[Window]:
        """End the windows whose time has come (the daemon calls this every second)."""
        due = [s for s, w in self.windows.items() if w.until <= now]
        return self.end(due, now, "its window ended") if due else []

    def active(self, now: float) -> list[dict]:
        """The windows in force, for the status and health documents."""
        return [w.as_dict() for w in self.windows.values() if w.until > now]
