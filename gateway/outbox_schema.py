"""The outbox's SQLite schema and its migration: the tables (outbox, alert state, settings, the
audit log, the permanent alert log) and the columns added after the first release, which an
older outbox file gets when it is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.state_dir import StorageError

__all__ = ["ADDED", "SCHEMA", "prepare"]

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
    sent REAL                      -- PUBACKed, waiting for the platform's receipt
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
    delivered_at REAL,
    confirmed_at REAL              -- the platform's receipt covered it
);
"""
# columns added after the first release: (table, column, type)
ADDED = (("outbox", "sent", "REAL"), ("alert_log", "confirmed_at", "REAL"))


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Create what is missing, add the columns an older file lacks; StorageError names the file
    when the disk or the file refuses."""
    try:
        db.executescript(SCHEMA)
        for table, column, kind in ADDED:
            if column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    except sqlite3.OperationalError as exc:
        raise StorageError(f"cannot prepare the outbox {path}: {exc}") from None
