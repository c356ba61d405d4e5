"""The durable outbox: SQLite (WAL, synchronous=FULL) holding every message until it is delivered.

An alert or fault event is committed in ONE transaction together with the per-gateway sequence
counter, the point's alert state and the permanent alert log, before anything is sent. It leaves
the outbox once every uplink target's broker has PUBACKed it or, for a target with end-to-end
receipts, once that platform's receipt covers it: a PUBACKed event waits as "sent, unconfirmed"
and is sent again every `receipt_timeout` until then (`outbox_receipts.py`). Each target keeps
its own place in the outbox (`outbox_cursors.py`) and drains it through `outbox_drain.py`. So a
crash, a power cut after the commit or a broker outage delays an event but never loses it or
leaves a gap in `seq`. Alerts and faults (priority 0) drain before telemetry (priority 1);
telemetry is dropped oldest-first at the size cap and counted, alerts never are.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.outbox_commands import OutboxCommands
from gateway.outbox_cursors import Deliveries, Target
from gateway.outbox_drain import PRIORITY_EVENT, PRIORITY_TELEMETRY, Drain, OutboxRow
from gateway.outbox_hold import HeldEvent, Hold
from gateway.outbox_receipts import Receipts
from gateway.outbox_schema import prepare
from gateway.outbox_views import OutboxViews
from gateway.state_dir import StorageGuard, open_db

__all__ = ["Outbox", "OutboxRow", "AlertState", "PRIORITY_EVENT", "PRIORITY_TELEMETRY",
           "DEFAULT_TARGET", "Target"]

log = logging.getLogger("minewatch.outbox")

WAL_CHECKPOINT_PAGES = 100
DEFAULT_TARGET = "platform"  # the name of a single [uplink.mqtt] that gives none


@dataclass(frozen=True)
class AlertState:
    """The engine's memory of one point's episode (kind 'safety' or 'fault')."""

    key: str
    level: int
    alert_id: str | None
    since: float | None
    detail: str = ""


class Outbox(Drain, Receipts, OutboxViews, OutboxCommands):
    """`targets`: the uplink targets that drain it, in config order (the first takes over an
    older file's deliveries). Without them, one target named "platform" with `receipts` and
    `receipt_timeout`, read only when something drains (so `minewatch alerts list` beside a
    running daemon changes nothing)."""

    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024 * 1024, *,
                 guard: StorageGuard | None = None, hold_max_bytes: int = 16 * 1024 * 1024,
                 receipts: bool = False, receipt_timeout: float = 60.0,
                 targets: Sequence[Target] | None = None):
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
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._snapshot: dict = {}
        self._unwritten = {}
        self.targets = list(targets) if targets is not None else [
            Target(DEFAULT_TARGET, receipts, receipt_timeout)]
        self.results_target: str | None = None  # the target that carries commands
        Receipts.__init__(self, any(t.receipts for t in self.targets))
        self._deliveries: Deliveries | None = None
        if targets is not None:
            self.deliveries  # noqa: B018 (read where each target is now, and tidy up)

    @property
    def deliveries(self) -> Deliveries:
        """Where each target is (read at the first use)."""
        if self._deliveries is None:
            d = Deliveries(self.targets)
            d.load(self.db)
            self._deliveries = d
            self._write_deliveries()
        return self._deliveries

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
        if self._deliveries is not None and self._deliveries.pending \
                and not self._write(self._apply_deliveries):
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
        targets = self.deliveries.targets
        taken: list[tuple[int, HeldEvent]] = []  # what the targets already have, once committed
        with self._tx() as db:
            for h in self.hold.events:
                ev = h.event
                # a row while some target still has to send it or wait for its receipt
                if not targets or any(not h.has(t.name) or (t.receipts and h.waiting(t.name))
                                      for t in targets):
                    waiting = [at for t, at in h.sent.items() if h.waiting(t)]
                    cur = db.execute(
                        "INSERT INTO outbox (priority, topic, payload, qos, seq, event_id, created, "
                        "attempts, sent) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)",
                        (PRIORITY_EVENT, h.topic, h.payload, h.seq, ev["event_id"], h.created,
                         h.attempts, max(waiting, default=None)))
                    added += len(h.payload)
                    taken.append((cur.lastrowid, h))
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
        for rid, h in taken:
            self.deliveries.adopt(self.db, PRIORITY_EVENT, rid, None, h.seq, h.event["event_id"],
                                  h.created, h.sent, h.confirmed_by)
        self._write_deliveries()
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

    def settle_home(self, base: str) -> int:
        """The outbox's topics are written under `base` (`<prefix>/<site>/<gateway>/` of the
        first uplink target), and each target's session moves what starts with it under its
        own prefix. A backlog written under another base (the first target's prefix changed
        across a restart, or the targets' order) is moved under this one, or it would go out
        on topics the platforms no longer read. Returns how many rows moved; a disk that
        refuses leaves them (logged) until the next start."""
        row = self.db.execute("SELECT value FROM settings WHERE key='topic_base'").fetchone()
        old = row[0] if row else None
        if old == base:
            return 0
        moved = 0

        def write() -> None:
            nonlocal moved
            with self._tx() as db:
                if old is not None:
                    moved = db.execute(
                        "UPDATE outbox SET topic = ? || substr(topic, ?) "
                        "WHERE substr(topic, 1, ?) = ?",
                        (base, len(old) + 1, len(old), old)).rowcount
                db.execute("INSERT INTO settings (key, value) VALUES ('topic_base', ?) "
                           "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (base,))

        if not self._write(write):
            log.error("the outbox's topics stay under %s (the disk refuses the move to %s): "
                      "its backlog goes out there until a start can move it", old, base,
                      extra={"event": "outbox_topics_unmoved"})
            return 0
        if moved:
            log.warning("%d outbox messages written under %s go out under %s", moved, old, base,
                        extra={"event": "outbox_topics_moved", "moved": moved})
        return moved

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
        insert = ("INSERT INTO outbox (priority, topic, payload, qos, created, correlation, "
                  "target) VALUES (?, ?, ?, 1, ?, ?, ?)")
        taken = []
        with self._tx() as db:
            db.executemany(insert, [(m.priority, m.topic, m.payload, m.created, m.correlation,
                                     m.target) for m in held if not m.acked])
            for m in held:  # sent from memory to some targets already: they keep that
                if m.acked:
                    cur = db.execute(insert, (m.priority, m.topic, m.payload, m.created,
                                              m.correlation, m.target))
                    taken.append((cur.lastrowid, m))
        self.hold.take_telemetry({m.key for m in held})
        self._bytes += sum(len(m.payload) for m in held)
        for rid, m in taken:
            self.deliveries.adopt(self.db, m.priority, rid, m.target, None, None, m.created,
                                  dict.fromkeys(m.acked, m.created), {})
        self._write_deliveries()
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

    def _payload_bytes(self) -> int:
        row = self.db.execute("SELECT coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
        return int(row[0])
