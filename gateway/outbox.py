"""The durable outbox: SQLite (WAL, synchronous=FULL) holding every message until it is delivered.

An alert or fault event is committed in ONE transaction together with the per-gateway sequence
counter, the point's alert state and the permanent alert log, before anything is sent. It leaves
the outbox after a successful PUBACK or, with end-to-end receipts on, once the platform's receipt
covers it: a PUBACKed event waits as "sent, unconfirmed" and is sent again every
`receipt_timeout` until then (`outbox_receipts.py`). So a crash, a power cut after the commit or
a broker outage delays an event but never loses it or leaves a gap in `seq`. Alerts and faults
(priority 0) drain before telemetry (priority 1); telemetry is dropped oldest-first at the size
cap and counted, alerts never are.

A full or read-only disk stops nothing: what cannot be committed is held in memory with its seq
(`outbox_hold.py`), handed to the publisher in order, and committed once the disk allows; an
alert commit that finds the disk full first takes the room of the reserve (`state_dir.py`). The
WAL is checkpointed every 100 pages (400 KiB) instead of SQLite's 1000, so a fresh WAL stops
growing early: an event costs about 2.3 KB of disk instead of 32 KB (README, "A full disk").
The tables and their migration are `outbox_schema.py`'s; the platform's commands, their results
and the maintenance windows are `outbox_commands.py`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from gateway.outbox_commands import OutboxCommands
from gateway.outbox_hold import HeldEvent, Hold
from gateway.outbox_receipts import Receipts
from gateway.outbox_schema import prepare
from gateway.outbox_views import OutboxViews
from gateway.state_dir import StorageGuard, open_db

__all__ = ["Outbox", "OutboxRow", "AlertState", "PRIORITY_EVENT", "PRIORITY_TELEMETRY"]

log = logging.getLogger("minewatch.outbox")

PRIORITY_EVENT = 0
PRIORITY_TELEMETRY = 1
WAL_CHECKPOINT_PAGES = 100

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


@dataclass(frozen=True)
class AlertState:
    """The engine's memory of one point's episode (kind 'safety' or 'fault')."""

    key: str
    level: int
    alert_id: str | None
    since: float | None
    detail: str = ""


class Outbox(Receipts, OutboxViews, OutboxCommands):
    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024 * 1024, *,
                 guard: StorageGuard | None = None, hold_max_bytes: int = 16 * 1024 * 1024,
                 receipts: bool = False, receipt_timeout: float = 60.0):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.guard = guard if guard is not None else StorageGuard(self.path.parent)
        # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE) so the sequence
        # counter, the state and the rows commit as one unit
        self.db, self.exclusive = open_db(self.path, "FULL", self.guard)
        self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        prepare(self.db, self.path)
        self.hold = Hold(hold_max_bytes)
        self._seq = self._read_seq()
        self._bytes = self._payload_bytes()
        self._dropped = 0
        # PUBACKs the disk did not take yet: row id -> (time, kept as unconfirmed, seq, size)
        self._acked: dict[int, tuple[float, bool, int | None, int]] = {}
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._snapshot: dict = {}
        self._unwritten = {}
        Receipts.__init__(self, receipts, receipt_timeout)

    @property
    def dropped_telemetry(self) -> int:
        """Telemetry dropped at the outbox cap, or at the memory bound while the disk was full."""
        return self._dropped + self.hold.dropped_telemetry

    def close(self) -> None:
        if self.hold.events:
            self.flush()
        for h in self.hold.events:
            log.error("stopping while the disk still refuses the outbox: event seq %d (%s) is %s "
                      "and is not in the alert log", h.seq, h.event.get("event_id"),
                      "at the broker" if h.delivered else "LOST, never sent",
                      extra={"event": "held_at_stop", "seq": h.seq,
                             "payload": h.payload.decode(errors="replace")})
        if self._reader is not None:
            self._reader.close()
        self.db.close()

    # -- writing, and what happens when the disk refuses -----------------------------------------
    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # SQLite already rolled back after SQLITE_FULL
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise

    def _write(self, fn: Callable[[], None], alerts: bool = False) -> bool:
        """Run one write; a disk that refuses it is reported, never raised. An alert commit that
        finds the disk full takes the reserve's room and tries once more."""
        for _ in range(2):
            try:
                fn()
                return True
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
                raise  # a bug, not the disk
            except sqlite3.DatabaseError as exc:
                kind = self.guard.failed(self.path, exc)
                if not (alerts and kind == "full" and self.guard.release_reserve(self.path)):
                    return False
        return False

    def flush(self) -> bool:
        """Commit what waits in memory: held events and states, PUBACKs and receipts the disk did
        not take, the commands' ledger entries, then held telemetry and command results once the
        state directory is healthy. True when nothing is left waiting."""
        if (self.hold.events or self.hold.states) and \
                not self._write(self._commit_held, alerts=True):
            return False
        if (self._acked or self.pending_receipts()) and not self._write(self._apply_acked):
            return False
        if self._unwritten and not self._write(self._commit_ledger):
            return False
        if str(self.path) in self.guard.failing and not self._write(self._probe):
            return False
        self.guard.wrote(self.path)
        if self.hold.telemetry and not self.guard.paused():
            self._write(self._commit_telemetry)
        return not self.hold and not self._unwritten

    def _probe(self) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO meta (key, value) VALUES ('probe', 0) "
                       "ON CONFLICT(key) DO UPDATE SET value=value+1")

    # -- events -------------------------------------------------------------------------------
    def commit_events(self, events: list[tuple[str, dict]], states: Iterable[AlertState]) -> list[dict]:
        """Assign `seq` to each (topic, event) and commit them with the new alert states at once.
        When the disk refuses, they are held in memory with their seq and sent from there."""
        now = time.time()
        out = []
        for topic, event in events:
            self._seq += 1
            event = {**event, "seq": self._seq}
            payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
            self.hold.add_event(HeldEvent(self._seq, topic, event, payload, now))
            out.append(event)
        self.hold.states.update((s.key, s) for s in states)
        self.flush()
        return out

    def _commit_held(self) -> None:
        added = 0
        with self._tx() as db:
            for h in self.hold.events:
                ev = h.event
                if h.confirmed is None and (h.delivered is None or self.receipts):
                    db.execute(
                        "INSERT INTO outbox (priority, topic, payload, qos, seq, event_id, created, "
                        "attempts, sent) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)",
                        (PRIORITY_EVENT, h.topic, h.payload, h.seq, ev["event_id"], h.created,
                         h.attempts, h.sent))
                    added += len(h.payload)
                db.execute(
                    "INSERT INTO alert_log (seq, event_id, alert_id, kind, state, level, point, "
                    "observed_at, payload, delivered_at, confirmed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (h.seq, ev["event_id"], ev.get("alert_id"), ev["kind"], ev["state"],
                     ev["level"], ev.get("point"), ev["observed_at"] / 1000.0,
                     h.payload.decode(), h.delivered, h.confirmed))
            db.execute("INSERT INTO meta (key, value) VALUES ('seq', ?) "
                       "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (self._seq,))
            for s in self.hold.states.values():
                db.execute(
                    "INSERT INTO alert_state (key, level, alert_id, since, detail) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET level=excluded.level, "
                    "alert_id=excluded.alert_id, since=excluded.since, detail=excluded.detail",
                    (s.key, s.level, s.alert_id, s.since, s.detail))
        self._bytes += added
        self.hold.take_events()
        if self.max_bytes and self._bytes > self.max_bytes:
            self._enforce_cap()

    def alert_states(self) -> dict[str, AlertState]:
        rows = self.db.execute("SELECT key, level, alert_id, since, detail FROM alert_state")
        return {r[0]: AlertState(*r) for r in rows}

    def last_seq(self) -> int:
        return self._seq

    def _read_seq(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
        return row[0] if row else 0

    def add_record(self, topic: str, payload: bytes) -> bool:
        """Queue a message that must not be dropped but is no alert (the monthly report, a
        manual reading): it drains with the events, has no seq and is never dropped at the cap.
        False when the disk refused it; the caller keeps it and offers it again."""
        def write() -> None:
            with self._tx() as db:
                db.execute("INSERT INTO outbox (priority, topic, payload, qos, created) "
                           "VALUES (?, ?, ?, 1, ?)", (PRIORITY_EVENT, topic, payload, time.time()))

        if not self._write(write):
            return False
        self._bytes += len(payload)
        return True

    # -- telemetry ----------------------------------------------------------------------------
    def add_telemetry(self, messages: list[tuple[str, bytes]]) -> None:
        """Queue telemetry; while the state directory is unhealthy it waits in memory (bounded)
        so it never takes the room alerts need."""
        if not messages:
            return
        self.hold.add_telemetry(messages, time.time())
        if not self.guard.paused():
            self._write(self._commit_telemetry)

    def _commit_telemetry(self) -> None:
        held = list(self.hold.telemetry)
        with self._tx() as db:
            db.executemany("INSERT INTO outbox (priority, topic, payload, qos, created, "
                           "correlation) VALUES (?, ?, ?, 1, ?, ?)",
                           [(m.priority, m.topic, m.payload, m.created, m.correlation)
                            for m in held])
        self.hold.take_telemetry({m.key for m in held})
        self._bytes += sum(len(m.payload) for m in held)
        if self.max_bytes and self._bytes > self.max_bytes:
            self._enforce_cap()

    def _enforce_cap(self) -> None:
        """Drop the oldest telemetry until under the cap; alerts are never dropped."""
        while self._bytes > self.max_bytes:
            rows = self.db.execute(
                "SELECT id, length(payload) FROM outbox WHERE priority=? ORDER BY id LIMIT 500",
                (PRIORITY_TELEMETRY,)).fetchall()
            if not rows:
                log.error("outbox holds %d bytes of undelivered alerts, over its cap of %d bytes; "
                          "alerts are kept and the outbox grows", self._bytes, self.max_bytes,
                          extra={"event": "outbox_over_cap"})
                return
            excess = self._bytes - self.max_bytes
            drop, freed = [], 0
            for rid, size in rows:
                drop.append((rid,))
                freed += size
                if freed >= excess:
                    break

            def delete(drop=drop) -> None:
                with self._tx() as db:
                    db.executemany("DELETE FROM outbox WHERE id=?", drop)

            if not self._write(delete):
                return
            self._bytes -= freed
            self._dropped += len(drop)

    # -- draining -----------------------------------------------------------------------------
    def peek(self, limit: int = 1) -> list[OutboxRow]:
        """The next messages to send, in drain order: events before telemetry, oldest first;
        events held in memory after the committed ones (their seq is higher)."""
        due = self.resend_due()
        out = self._db_rows(PRIORITY_EVENT, due, limit)
        for h in list(self.hold.events):
            if len(out) >= limit:
                return out
            if h.confirmed is None and (h.sent is None or (self.receipts and h.sent <= due)):
                out.append(OutboxRow(h.seq, PRIORITY_EVENT, h.topic, h.payload, 1, h.seq,
                                     h.event["event_id"], h.attempts, held=True))
        held = sorted(self.hold.telemetry, key=lambda m: m.priority)  # command results first
        for m in [m for m in held if m.priority == PRIORITY_EVENT][:max(0, limit - len(out))]:
            out.append(OutboxRow(m.key, m.priority, m.topic, m.payload, 1, None, None, 0,
                                 held=True, correlation=m.correlation))
        if len(out) < limit:
            out += self._db_rows(PRIORITY_TELEMETRY, due, limit - len(out))
        for m in [m for m in held if m.priority != PRIORITY_EVENT][:max(0, limit - len(out))]:
            out.append(OutboxRow(m.key, m.priority, m.topic, m.payload, 1, None, None, 0,
                                 held=True))
        return out

    def _db_rows(self, priority: int, due: float, limit: int) -> list[OutboxRow]:
        try:
            rows = self.db.execute(
                "SELECT id, priority, topic, payload, qos, seq, event_id, attempts, 0, "
                "correlation FROM outbox "
                "WHERE priority=? AND (sent IS NULL OR sent <= ?) ORDER BY id LIMIT ?",
                (priority, due, limit + len(self._acked))).fetchall()
        except sqlite3.OperationalError as exc:
            self.guard.failed(self.path, exc)
            return []
        out = []
        for r in rows:
            acked = self._acked.get(r[0])
            if acked is not None and (not acked[1] or acked[0] > due):
                continue
            if self.covered(r[5], r[6]):
                continue
            out.append(OutboxRow(*r[:8], correlation=r[9]))
        return out[:limit]

    def ack(self, row: OutboxRow) -> None:
        """The broker accepted the message: telemetry leaves; an event leaves too, or with
        receipts on waits as sent and unconfirmed; the alert log notes the delivery."""
        now = time.time()
        if row.held and row.seq is None:  # telemetry or a command's result
            self.hold.remove_telemetry(row.id)
            return
        if row.held:
            h = self.hold.event(row.seq)
            if h is not None:
                h.sent = now
                h.delivered = h.delivered or now
                return
            found = self.db.execute("SELECT id FROM outbox WHERE seq=?", (row.seq,)).fetchone()
            if found is None:  # committed as confirmed meanwhile
                return
            row = replace(row, id=found[0], held=False)  # committed while it was in flight
        keep = self.receipts and row.seq is not None

        def write() -> None:
            with self._tx() as db:
                self._ack_row(db, row.id, keep, row.seq, now)

        if self._write(write):
            if not keep:
                self._bytes -= len(row.payload)
        else:
            self._acked[row.id] = (now, keep, row.seq, len(row.payload))

    def _ack_row(self, db: sqlite3.Connection, rowid: int, keep: bool, seq: int | None,
                 at: float) -> None:
        if keep:
            db.execute("UPDATE outbox SET sent=? WHERE id=?", (at, rowid))
        else:
            db.execute("DELETE FROM outbox WHERE id=?", (rowid,))
        if seq is not None:
            db.execute("UPDATE alert_log SET delivered_at=coalesce(delivered_at, ?) WHERE seq=?",
                       (at, seq))

    def _apply_acked(self) -> None:
        with self._tx() as db:
            for rowid, (at, keep, seq, _) in self._acked.items():
                self._ack_row(db, rowid, keep, seq, at)
            self.apply_receipts(db)
        self._acked.clear()
        self._bytes = self._payload_bytes()  # acks and receipts may have covered the same rows

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

    def _payload_bytes(self) -> int:
        row = self.db.execute("SELECT coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
        return int(row[0])
