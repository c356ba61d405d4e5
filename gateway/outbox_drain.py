"""Draining the outbox, per uplink target: what a target sends next (`peek`), what its broker
acknowledged (`ack`), what failed (`record_failure`).

Each target drains in the same order, events, records and command results (lane 0) before
telemetry (lane 1), oldest first, and events held in memory (the disk refused them) after the
committed ones, whose seq is lower. Where each target is lives in `outbox_cursors.py`; what the
disk does not take yet waits in memory there and in the hold, so a full disk changes nothing a
publisher sees.

A mixin of `Outbox`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gateway.outbox_cursors import Deliveries, TargetState

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.outbox_hold import Hold
    from gateway.state_dir import StorageGuard

__all__ = ["Drain", "OutboxRow", "PRIORITY_EVENT", "PRIORITY_TELEMETRY"]

log = logging.getLogger("minewatch.outbox")

PRIORITY_EVENT = 0
PRIORITY_TELEMETRY = 1

_COLUMNS = ("id, priority, topic, payload, qos, seq, event_id, attempts, correlation, target, "
            "created")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    priority: int
    topic: str
    payload: bytes
    qos: int
    seq: int | None
    event_id: str | None
    attempts: int
    held: bool = False  # in memory only: the disk did not take it yet
    correlation: bytes | None = None  # a command result's MQTT 5 Correlation Data
    target: str | None = None  # for this uplink target only (a command's result)
    created: float = 0.0

    @property
    def key(self) -> tuple:
        """The same message whether held in memory or committed since (an event by its seq)."""
        if self.seq is not None:
            return ("event", self.seq)
        return ("held" if self.held else "row", self.id)


def _row(r: tuple) -> OutboxRow:
    return OutboxRow(*r[:8], correlation=r[8], target=r[9], created=r[10])


class Drain:
    db: sqlite3.Connection
    guard: StorageGuard
    hold: Hold
    path: Any
    _bytes: int
    _write: Callable[..., bool]
    _tx: Callable[[], Any]
    deliveries: Deliveries

    def peek(self, limit: int = 1, target: str | None = None) -> list[OutboxRow]:
        """The next messages `target` (default: the first) has to send, in drain order, with
        the unconfirmed events whose receipt_timeout passed."""
        st = self.deliveries.state(target)
        due = st.due() if st.target.receipts else None
        out = self._lane_rows(st, PRIORITY_EVENT, due, limit)
        for h in list(self.hold.events):
            if len(out) >= limit:
                return out
            if not h.has(st.name) or (due is not None and h.waiting(st.name)
                                       and h.sent[st.name] <= due):
                out.append(OutboxRow(h.seq, PRIORITY_EVENT, h.topic, h.payload, 1, h.seq,
                                     h.event["event_id"], h.attempts, held=True,
                                     created=h.created))
        held = [m for m in self.hold.telemetry
                if st.name not in m.acked and m.target in (None, st.name)]
        held.sort(key=lambda m: m.priority)  # command results first
        for m in [m for m in held if m.priority == PRIORITY_EVENT][:max(0, limit - len(out))]:
            out.append(OutboxRow(m.key, m.priority, m.topic, m.payload, 1, None, None, 0,
                                 held=True, correlation=m.correlation, target=m.target,
                                 created=m.created))
        if len(out) < limit:
            out += self._lane_rows(st, PRIORITY_TELEMETRY, None, limit - len(out))
        for m in [m for m in held if m.priority != PRIORITY_EVENT][:max(0, limit - len(out))]:
            out.append(OutboxRow(m.key, m.priority, m.topic, m.payload, 1, None, None, 0,
                                 held=True, created=m.created))
        return out

    def _lane_rows(self, st: TargetState, lane: int, due: float | None, limit: int
                   ) -> list[OutboxRow]:
        ahead = st.ahead[lane]
        try:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE priority = ? AND id > ? AND "
                "(target IS NULL OR target = ?) ORDER BY id LIMIT ?",
                (lane, st.done[lane], st.name, limit + len(ahead))).fetchall()
            resend = sorted(rid for rid, u in st.unconfirmed.items() if u.sent <= due)[:limit] \
                if due is not None else []
            if resend:
                rows += self.db.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE priority = ? AND id IN "
                    f"({','.join('?' * len(resend))})", (lane, *resend)).fetchall()
        except sqlite3.OperationalError as exc:
            self.guard.failed(self.path, exc)
            return []
        out = {r[0]: r for r in rows if r[0] in resend or (r[0] not in ahead
                                                             and not st.waiting(r[0]))}
        return [_row(out[rid]) for rid in sorted(out)[:limit]]

    def ack_many(self, rows: list[OutboxRow], target: str | None = None) -> None:
        """`ack` for PUBACKs that came in together: one transaction."""
        for row in rows:
            self.ack(row, target, write=False)
        self._write_deliveries()

    def ack(self, row: OutboxRow, target: str | None = None, write: bool = True) -> None:
        """`target`'s broker accepted the message (default: the first target's). Once every
        target has it (and every platform with receipts confirmed it) it leaves the outbox; the
        alert log notes when every target had an event."""
        now = time.time()
        d = self.deliveries
        name = d.state(target).name
        if row.held and row.seq is None:  # telemetry or a command's result in memory
            m = self.hold.message(row.id)
            if m is not None:
                m.acked.add(name)
                if all(t in m.acked for t in d.names if m.target in (None, t)):
                    self.hold.remove_telemetry(row.id)
            return
        if row.held:
            h = self.hold.event(row.seq)
            if h is not None:
                h.sent[name] = now
                if all(h.has(t) for t in d.names):
                    h.delivered = h.delivered or now
                return
            found = self.db.execute("SELECT id, created FROM outbox WHERE seq = ?",
                                    (row.seq,)).fetchone()
            if found is None:  # committed as confirmed meanwhile
                return
            row = replace(row, id=found[0], created=found[1], held=False)  # committed meanwhile
        d.acked(self.db, name, row.priority, row.id, row.target, row.seq, row.event_id,
                row.created, now)
        if write:
            self._write_deliveries()

    def _write_deliveries(self) -> bool:
        """Write what the targets' answers changed (and release what every target has); a disk
        that refuses keeps it queued for the next flush."""
        return not self.deliveries.pending or self._write(self._apply_deliveries)

    def _apply_deliveries(self) -> None:
        with self._tx() as db:
            freed, gone = self.deliveries.write(db)
        self.deliveries.forget(gone)
        self._bytes -= freed

    def record_failure(self, row: OutboxRow, error: str) -> None:
        if row.held and row.seq is None:
            return
        if row.held:
            h = self.hold.event(row.seq)
            if h is not None:
                h.attempts += 1
            return
        # a counter: not worth a disk alarm
        with contextlib.suppress(sqlite3.DatabaseError), self._tx() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, last_error=? WHERE id=?",
                       (error, row.id))
