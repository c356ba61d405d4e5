"""The durable outbox: SQLite (WAL, synchronous=FULL) holding every message until the broker acks it.

An alert or fault event is committed in ONE transaction together with the per-gateway sequence
counter, the point's alert state and the permanent alert log, before anything is sent; it leaves
the outbox only after a successful PUBACK. So a crash, a power cut after the commit or a broker
outage can delay an event but never lose it or leave a gap in `seq`. Alerts and faults (priority 0)
drain before telemetry (priority 1); telemetry is dropped oldest-first at the size cap and counted,
alerts never are.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Outbox", "OutboxRow", "AlertState", "PRIORITY_EVENT", "PRIORITY_TELEMETRY"]

log = logging.getLogger("minewatch.outbox")

PRIORITY_EVENT = 0
PRIORITY_TELEMETRY = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL DEFAULT 1,
    seq INTEGER,
    event_id TEXT,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_drain ON outbox (priority, id);
CREATE TABLE IF NOT EXISTS alert_state (
    key TEXT PRIMARY KEY,          -- kind/point
    level INTEGER NOT NULL,
    alert_id TEXT,
    since REAL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE TABLE IF NOT EXISTS alert_log (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    alert_id TEXT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    level TEXT NOT NULL,
    point TEXT,
    observed_at REAL NOT NULL,
    payload TEXT NOT NULL,
    delivered_at REAL
);
"""


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


@dataclass(frozen=True)
class AlertState:
    """The engine's memory of one point's episode (kind 'safety' or 'fault')."""

    key: str
    level: int
    alert_id: str | None
    since: float | None
    detail: str = ""


class Outbox:
    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024 * 1024):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE) so the sequence
        # counter, the state and the rows commit as one unit
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self.dropped_telemetry = 0
        self._bytes = self._payload_bytes()

    def close(self) -> None:
        self.db.close()

    # -- events -------------------------------------------------------------------------------
    def commit_events(self, events: list[tuple[str, dict]], states: Iterable[AlertState]) -> list[dict]:
        """Assign `seq` to each (topic, event) and commit them with the new alert states at once."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            seq = row[0] if row else 0
            out = []
            now = time.time()
            for topic, event in events:
                seq += 1
                event = {**event, "seq": seq}
                payload = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
                cur.execute(
                    "INSERT INTO outbox (priority, topic, payload, qos, seq, event_id, created) "
                    "VALUES (?, ?, ?, 1, ?, ?, ?)",
                    (PRIORITY_EVENT, topic, payload.encode(), seq, event["event_id"], now),
                )
                cur.execute(
                    "INSERT INTO alert_log (seq, event_id, alert_id, kind, state, level, point, "
                    "observed_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, event["event_id"], event.get("alert_id"), event["kind"], event["state"],
                     event["level"], event.get("point"), event["observed_at"] / 1000.0, payload),
                )
                self._bytes += len(payload)
                out.append(event)
            cur.execute("INSERT INTO meta (key, value) VALUES ('seq', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (seq,))
            for s in states:
                cur.execute(
                    "INSERT INTO alert_state (key, level, alert_id, since, detail) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET level=excluded.level, "
                    "alert_id=excluded.alert_id, since=excluded.since, detail=excluded.detail",
                    (s.key, s.level, s.alert_id, s.since, s.detail),
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        if self.max_bytes and self._bytes > self.max_bytes:
            self._enforce_cap()
        return out

    def alert_states(self) -> dict[str, AlertState]:
        rows = self.db.execute("SELECT key, level, alert_id, since, detail FROM alert_state")
        return {r[0]: AlertState(*r) for r in rows}

    def last_seq(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
        return row[0] if row else 0

    # -- telemetry ----------------------------------------------------------------------------
    def add_telemetry(self, messages: list[tuple[str, bytes]]) -> None:
        if not messages:
            return
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT INTO outbox (priority, topic, payload, qos, created) VALUES (?, ?, ?, 1, ?)",
                [(PRIORITY_TELEMETRY, t, p, now) for t, p in messages],
            )
        self._bytes += sum(len(p) for _, p in messages)
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
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("DELETE FROM outbox WHERE id=?", drop)
            self._bytes -= freed
            self.dropped_telemetry += len(drop)

    # -- draining -----------------------------------------------------------------------------
    def peek(self, limit: int = 1) -> list[OutboxRow]:
        """The next messages to send, in drain order: events before telemetry, oldest first."""
        rows = self.db.execute(
            "SELECT id, priority, topic, payload, qos, seq, event_id, attempts FROM outbox "
            "ORDER BY priority, id LIMIT ?", (limit,)).fetchall()
        return [OutboxRow(*r) for r in rows]

    def ack(self, row: OutboxRow) -> None:
        """The broker accepted the message: remove it, and note delivery in the alert log."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM outbox WHERE id=?", (row.id,))
            if row.seq is not None:
                self.db.execute("UPDATE alert_log SET delivered_at=? WHERE seq=?",
                                (time.time(), row.seq))
        self._bytes -= len(row.payload)

    def record_failure(self, row: OutboxRow, error: str) -> None:
        with self.db:
            self.db.execute("UPDATE outbox SET attempts=attempts+1, last_error=? WHERE id=?",
                            (error, row.id))

    def depth(self) -> dict[str, int]:
        rows = self.db.execute("SELECT priority, count(*) FROM outbox GROUP BY priority").fetchall()
        d = dict(rows)
        return {"events": d.get(PRIORITY_EVENT, 0), "telemetry": d.get(PRIORITY_TELEMETRY, 0)}

    def alert_log(self, limit: int = 100) -> list[dict]:
        rows = self.db.execute("SELECT payload, delivered_at FROM alert_log ORDER BY seq DESC "
                               "LIMIT ?", (limit,)).fetchall()
        out = []
        for payload, delivered in rows:
            ev = json.loads(payload)
            ev["delivered_at"] = delivered
            out.append(ev)
        return out[::-1]

    def audit_thresholds(self, thresholds: dict[str, dict], at: float) -> list[dict]:
        """Record every threshold that differs from the last run's in the permanent audit log
        (R13: every threshold change is audit-logged); returns the entries written."""
        row = self.db.execute("SELECT value FROM settings WHERE key='thresholds'").fetchone()
        before = json.loads(row[0]) if row else None
        entries = []
        if before is not None:
            for point in sorted(set(before) | set(thresholds)):
                old, new = before.get(point), thresholds.get(point)
                if old != new:
                    entries.append({"at": at, "kind": "thresholds", "subject": point,
                                    "before": old, "after": new})
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT INTO audit_log (at, kind, subject, before, after) VALUES (?, ?, ?, ?, ?)",
                [(e["at"], e["kind"], e["subject"], json.dumps(e["before"]),
                  json.dumps(e["after"])) for e in entries])
            self.db.execute("INSERT INTO settings (key, value) VALUES ('thresholds', ?) "
                            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                            (json.dumps(thresholds, sort_keys=True),))
        return entries

    def audit_log(self, limit: int = 100) -> list[dict]:
        rows = self.db.execute("SELECT at, kind, subject, before, after FROM audit_log "
                               "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"at": at, "kind": k, "subject": s, "before": json.loads(b) if b else None,
                 "after": json.loads(a) if a else None} for at, k, s, b, a in rows][::-1]

    def _payload_bytes(self) -> int:
        row = self.db.execute("SELECT coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
        return int(row[0])
