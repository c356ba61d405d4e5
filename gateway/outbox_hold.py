"""What the outbox holds in memory while its database cannot be written (disk full, read-only).

Events keep the `seq` the outbox gave them and their order, and the publishers send them like
committed ones, so every uplink target gets every event in order while the disk is full; they
are committed (with the alert states and the alert log, and what each target already has) as
soon as the disk allows. Telemetry waits beside them. Memory is bounded by `max_bytes`: at the bound the oldest telemetry goes first, then
events the broker already acknowledged (only the local alert log loses them), and events nobody
has acknowledged only when nothing else is left. Every drop is counted and logged.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.outbox import AlertState

__all__ = ["Hold", "HeldEvent", "HeldMessage"]

log = logging.getLogger("minewatch.outbox")


@dataclass
class HeldEvent:
    seq: int
    topic: str
    event: dict
    payload: bytes
    created: float
    attempts: int = 0
    sent: dict[str, float] = field(default_factory=dict)  # per target: its latest PUBACK
    confirmed_by: dict[str, float] = field(default_factory=dict)  # per target: its receipt
    delivered: float | None = None  # when every target had PUBACKed it
    confirmed: float | None = None  # when every target with receipts had its receipt

    def has(self, target: str) -> bool:
        return target in self.sent or target in self.confirmed_by

    def waiting(self, target: str) -> bool:
        """PUBACKed by `target`, whose platform has not confirmed it yet."""
        return target in self.sent and target not in self.confirmed_by


@dataclass
class HeldMessage:
    """Telemetry, or a command's result (priority 0, with its MQTT 5 correlation data)."""

    key: int
    topic: str
    payload: bytes
    created: float
    priority: int = 1
    correlation: bytes | None = None
    target: str | None = None  # a result is for the target its request came from
    acked: set[str] = field(default_factory=set)  # the targets that PUBACKed it


class Hold:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.events: deque[HeldEvent] = deque()
        self.states: dict[str, AlertState] = {}
        self.telemetry: deque[HeldMessage] = deque()
        self.bytes = 0
        self.dropped_events = 0  # over the bound, never committed (the alert log misses them)
        self.dropped_undelivered = 0  # ... of which nobody had acknowledged: lost
        self.dropped_telemetry = 0
        self._key = 0

    def __bool__(self) -> bool:
        return bool(self.events or self.states or self.telemetry)

    def add_event(self, held: HeldEvent) -> None:
        self.events.append(held)
        self.bytes += len(held.payload)
        self._bound()

    def add_telemetry(self, messages: list[tuple[str, bytes]], now: float) -> None:
        for topic, payload in messages:
            self._key += 1
            self.telemetry.append(HeldMessage(self._key, topic, payload, now))
            self.bytes += len(payload)
        self._bound()

    def add_results(self, messages: list[tuple[str, bytes, bytes | None]], now: float,
                    target: str | None = None) -> None:
        """Command results the disk did not take: sent directly, never dropped for room."""
        for topic, payload, correlation in messages:
            self._key += 1
            self.telemetry.append(HeldMessage(self._key, topic, payload, now, 0, correlation,
                                              target))
            self.bytes += len(payload)

    def event(self, seq: int | None) -> HeldEvent | None:
        for h in self.events:
            if h.seq == seq:
                return h
        return None

    def message(self, key: int) -> HeldMessage | None:
        for m in self.telemetry:
            if m.key == key:
                return m
        return None

    def remove_telemetry(self, key: int) -> None:
        for m in self.telemetry:
            if m.key == key:
                self.telemetry.remove(m)
                self.bytes -= len(m.payload)
                return

    def take_events(self) -> None:
        """The held events and states were committed."""
        self.bytes -= sum(len(h.payload) for h in self.events)
        self.events.clear()
        self.states.clear()

    def take_telemetry(self, keys: set[int]) -> None:
        kept = deque(m for m in self.telemetry if m.key not in keys)
        self.bytes -= sum(len(m.payload) for m in self.telemetry if m.key in keys)
        self.telemetry = kept

    def counts(self) -> dict[str, int]:
        events = list(self.events)  # a copy: the status endpoint's thread reads this too
        return {"held_events": len(events),
                "held_unsent": sum(h.delivered is None for h in events),
                "held_telemetry": len(self.telemetry), "held_bytes": self.bytes,
                "hold_max_bytes": self.max_bytes, "dropped_events": self.dropped_events,
                "dropped_undelivered": self.dropped_undelivered}

    def _bound(self) -> None:
        for m in list(self.telemetry):
            if self.bytes <= self.max_bytes:
                break
            if m.priority == 0:
                continue  # a command's result: small, and the platform waits for it
            self.telemetry.remove(m)
            self.bytes -= len(m.payload)
            self.dropped_telemetry += 1
        if self.bytes <= self.max_bytes:
            return
        # only events left over the bound: first those the broker has, then the oldest others
        for acknowledged in (True, False):
            for h in list(self.events):
                if self.bytes <= self.max_bytes or len(self.events) == 1:
                    return
                if (h.delivered is not None) != acknowledged:
                    continue
                self.events.remove(h)
                self.bytes -= len(h.payload)
                self.dropped_events += 1
                self.dropped_undelivered += h.delivered is None
                log.error("event seq %d (%s) dropped from memory: the %d-byte hold is full and the "
                          "disk still takes nothing; %s", h.seq, h.event.get("event_id"),
                          self.max_bytes, "the broker has it, the local alert log will not"
                          if h.delivered is not None else "it was never sent: LOST",
                          extra={"event": "hold_dropped", "seq": h.seq,
                                 "payload": h.payload.decode(errors="replace")})
