"""The uplink window: which outbox messages one target publishes now, with up to `size`
(`[uplink.mqtt] max_inflight`) published and waiting for their PUBACK, and what a PUBACK or a
refusal means for the rest. Pure logic: the publisher (`mqtt.py`) feeds it rows and answers.

The rules (docs/contracts.md#topics says them to the platform):

- Lane 0 (alerts, faults, records, command results) goes before lane 1 (telemetry): telemetry
  is published only while no lane-0 message waits to be, and never takes the last slot of a
  window of 2 or more, so a new alert never waits for a telemetry PUBACK: at most behind the
  bytes already on the wire.
- Lane 0 goes in outbox order (events in seq order), up to the whole window. A broker PUBACKs in
  the order it received (MQTT 3.1.1 and 5, §4.6) and a connection delivers in order, so when a
  connection is lost the broker holds a prefix of what was in flight, and paho sends the rest
  again, first and in the same order, on the next connection (the publisher never publishes a
  copy of its own). The platform's first arrivals stay in seq order through broker restarts.
- A refusal (MQTT 5 PUBACK reason >= 0x80) is the one way a broker takes k+1 without k. Then
  lane 0 falls back to one in flight: k is retried alone with backoff (nothing else is published
  meanwhile, telemetry neither), and the lane-0 messages that were in flight behind k do not
  count as delivered even when the broker took them: they are published again after k. The
  platform may see k+1 before k, then k and k+1 again: the last copy of each event comes in seq
  order, and a platform with receipts lists k+1 in `event_ids` until k arrives.
- Lane 1 is windowed freely (each telemetry message carries its own times); a refused one is
  retried with its own backoff and holds nothing else up.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Flight", "Window"]


class Row(Protocol):
    priority: int

    @property
    def key(self) -> Hashable: ...


@dataclass
class Flight:
    row: Row
    sent: float  # monotonic
    order: int
    behind: bool = False  # published after a lane-0 message the broker then refused
    warned: bool = False  # its PUBACK is overdue and the log said so


class Window:
    def __init__(self, size: int, backoff_min: float = 0.5, backoff_max: float = 30.0):
        self.size = max(1, size)
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.flights: dict[Hashable, Flight] = {}
        self.alone = False  # lane 0 one message at a time, until one gets through
        self.retry_at = [0.0, 0.0]
        self.backoff = [backoff_min, backoff_min]
        self._order = 0

    def busy(self, key: Hashable) -> bool:
        return key in self.flights

    def peek_size(self) -> int:
        """How many rows to ask the outbox for: those in flight come back too."""
        return self.size + len(self.flights)

    def choose(self, rows: list, now: float) -> list:
        """Of `rows` (in drain order), those to publish now."""
        free = self.size - len(self.flights)
        lane0 = sum(f.row.priority == 0 for f in self.flights.values())
        telemetry = len(self.flights) - lane0
        chosen = []
        for row in rows:
            if free <= 0:
                break
            if row.key in self.flights:
                continue
            if row.priority == 0:
                if now < self.retry_at[0] or (self.alone and lane0):
                    break  # and no telemetry ahead of it either
                lane0 += 1
            else:
                if now < self.retry_at[1] or telemetry >= max(1, self.size - 1):
                    break
                telemetry += 1
            chosen.append(row)
            free -= 1
        return chosen

    def sent(self, row: Row, now: float) -> None:
        self._order += 1
        self.flights[row.key] = Flight(row, now, self._order)

    def done(self, key: Hashable, error: str | None, now: float) -> tuple[Row | None, bool]:
        """The broker answered: (the row, whether it now counts as delivered)."""
        f = self.flights.pop(key, None)
        if f is None:
            return None, False
        lane = 0 if f.row.priority == 0 else 1
        if error is None:
            if not f.behind:  # the refused one got through, or all was well
                self.backoff[lane] = self.backoff_min
                self.alone = self.alone and lane != 0
            return f.row, not f.behind
        if lane == 0:
            self.alone = True
            for g in self.flights.values():
                if g.row.priority == 0 and g.order > f.order:
                    g.behind = True
        self.retry_at[lane] = now + self.backoff[lane]
        self.backoff[lane] = min(self.backoff[lane] * 2, self.backoff_max)
        return f.row, False

    def release(self, key: Hashable) -> None:
        """The message was lost unsent (a QoS 0 publish paho dropped with its connection): it
        may be chosen again, with no backoff and no refusal counted."""
        self.flights.pop(key, None)

    def retry_in(self, now: float) -> float | None:
        """Seconds until a backoff ends, if one is running."""
        waits = [t - now for t in self.retry_at if t > now]
        return min(waits) if waits else None

    def reconnected(self, now: float) -> None:
        """paho sends what is in flight again: their PUBACKs are due from now."""
        for f in self.flights.values():
            f.sent = now
            f.warned = False

    def overdue(self, now: float, after: float) -> list[Flight]:
        """Flights waiting longer than `after` seconds whose wait was not reported yet."""
        out = [f for f in self.flights.values() if not f.warned and now - f.sent > after]
        for f in out:
            f.warned = True
        return out
