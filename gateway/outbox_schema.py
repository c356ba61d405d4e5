"""The outbox's SQLite schema and its migration: the tables (outbox, alert state, settings, the
audit log, the permanent alert log, the platform's commands and the maintenance windows they
set, and where each uplink target is in the outbox: `cursors`, `ahead`, `unconfirmed`, kept by
`outbox_cursors.py`) and the columns added after the first release, which an older outbox file
gets when it is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.state_dir import StorageError

__all__ = ["ADDED", "INDEXES", "SCHEMA", "prepare"]

SCHEMA = """
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
    last_error TEXT,
    sent REAL,                     -- PUBACKed, waiting for a platform's receipt
    correlation BLOB,              -- a command result's MQTT 5 Correlation Data
    target TEXT                    -- for this uplink target only (a command's result); NULL: all
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
    after TEXT,
    by TEXT                        -- who changed it: a command's `by`, "SIGHUP", "rollback"
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
    delivered_at REAL,
    confirmed_at REAL              -- the platform's receipt covered it
);
CREATE TABLE IF NOT EXISTS command_log (
    id TEXT PRIMARY KEY,           -- the request's id: a redelivery is answered from here
    command TEXT NOT NULL,
    received REAL NOT NULL,        -- wall clock
    digest TEXT NOT NULL,          -- SHA-256 of the request's canonical JSON without sig
    by TEXT,
    request TEXT NOT NULL,
    result TEXT                    -- the first answer; NULL while it runs
);
CREATE TABLE IF NOT EXISTS maintenance (
    subject TEXT PRIMARY KEY,      -- point:<name> or device:<name>
    since REAL NOT NULL,           -- clock time
    until REAL NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL,
    command_id TEXT
);
-- per uplink target and lane (0 events, records and results; 1 telemetry): every row of the
-- lane up to `done` has been PUBACKed by the target (or is not for it)
CREATE TABLE IF NOT EXISTS cursors (
    target TEXT NOT NULL,
    lane INTEGER NOT NULL,
    done INTEGER NOT NULL,
    PRIMARY KEY (target, lane)
);
-- rows beyond a target's cursor that it has PUBACKed already (a window's PUBACKs out of order)
CREATE TABLE IF NOT EXISTS ahead (
    target TEXT NOT NULL,
    id INTEGER NOT NULL,
    lane INTEGER NOT NULL,
    PRIMARY KEY (target, id)
);
-- events a target with receipts has PUBACKed and its platform has not confirmed yet
CREATE TABLE IF NOT EXISTS unconfirmed (
    target TEXT NOT NULL,
    id INTEGER NOT NULL,
    seq INTEGER,
    event_id TEXT,
    created REAL NOT NULL,
    sent REAL NOT NULL,
    PRIMARY KEY (target, id)
);
"""
# indexes on columns that older files lack until ADDED has run
INDEXES = "CREATE INDEX IF NOT EXISTS alert_log_alert ON alert_log (alert_id, seq);"
# columns added after the first release: (table, column, type)
ADDED = (("outbox", "sent", "REAL"), ("alert_log", "confirmed_at", "REAL"),
         ("outbox", "correlation", "BLOB"), ("audit_log", "by", "TEXT"),
         ("outbox", "target", "TEXT"))


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Create what is missing, add the columns an older file lacks; StorageError names the file
    when the disk or the file refuses."""
    try:
        db.executescript(SCHEMA)
        for table, column, kind in ADDED:
            if column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        db.executescript(INDEXES)
    except sqlite3.OperationalError as exc:
        raise StorageError(f"cannot prepare the outbox {path}: {exc}") from None
