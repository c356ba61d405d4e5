"""Manual readings in the history store: entered, waiting for the gateway, and their results.

`minewatch reading add` runs in its own process, so it never touches the outbox (the daemon owns
the event sequence): it stores the reading as `pending` and returns. The running gateway takes
pending readings once a second, grades, compares, publishes and stores each one's result
(`gateway/manual/intake.py`), and the command shows that result when it arrives within its wait.
A reading entered while the gateway is stopped waits for its next start; nothing is lost. The
platform's `reading` command takes the same path inside the daemon.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.state_dir import StorageError

__all__ = ["Reading", "store_reading", "insert_reading", "pending_readings", "finish_reading",
           "reading_state"]


@dataclass(frozen=True)
class Reading:
    reading_id: str
    point: str
    value: float
    at: float  # when it was read, UTC epoch s
    by: str
    note: str
    source: str  # cli | mqtt
    entered_at: float

    def block(self) -> dict:
        """The `reading` block of its events and its telemetry message."""
        return {"reading_id": self.reading_id, "by": self.by, "note": self.note,
                "source": self.source, "quality": 6}


def insert_reading(db: sqlite3.Connection, r: Reading, state: str = "pending") -> None:
    db.execute("INSERT INTO readings (reading_id, point, value, at, by, note, source, "
               "entered_at, state) VALUES (:reading_id, :point, :value, :at, :by, :note, "
               ":source, :entered_at, :state) ON CONFLICT (reading_id) DO NOTHING",
               {**asdict(r), "state": state})


def store_reading(path: Path, r: Reading) -> None:
    """The CLI's write: one transaction of its own; StorageError says why the disk refused."""
    from gateway.history.store import SCHEMA
    from gateway.state_dir import open_db

    db, _ = open_db(path, "FULL")  # StorageError names the file when it cannot be opened
    try:
        db.execute("PRAGMA busy_timeout=10000")
        db.executescript(SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        insert_reading(db, r)
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot store the reading in {path}: {exc}") from None
    finally:
        db.close()


def pending_readings(db: sqlite3.Connection, limit: int = 100) -> list[Reading]:
    rows = db.execute("SELECT reading_id, point, value, at, by, note, source, entered_at "
                      "FROM readings WHERE state='pending' ORDER BY id LIMIT ?",
                      (limit,)).fetchall()
    return [Reading(*row) for row in rows]


def finish_reading(reading_id: str, state: str, result: dict, at: float):
    """A write for `HistoryStore.later`: the reading's result (state done or rejected)."""
    text = json.dumps(result, ensure_ascii=False)

    def write(db: sqlite3.Connection) -> None:
        db.execute("UPDATE readings SET state=?, result=?, processed_at=? WHERE reading_id=?",
                   (state, text, at, reading_id))
    return write


def reading_state(path: Path, reading_id: str) -> tuple[str, dict | None] | None:
    """(state, result) of a stored reading, for the CLI waiting on the gateway."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT state, result FROM readings WHERE reading_id=?",
                         (reading_id,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    if row is None:
        return None
    return row[0], json.loads(row[1]) if row[1] else None
