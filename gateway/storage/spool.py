"""The sink's spool: line protocol waiting for the database, in a bounded SQLite file.

Every line goes through the spool, online or not, so there is one path and a restart picks up
where the last run stopped. The database copy is secondary to the MQTT outbox (which owns alert
durability), so at the size cap the oldest readings are dropped first and counted; alert and
health lines go only when nothing else is left. WAL with synchronous=NORMAL: a process crash
loses nothing committed, a power cut at most the last moments of raw series.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Spool", "SpoolChunk", "PRIORITY_READING", "PRIORITY_RECORD"]

PRIORITY_RECORD = 0  # alert and health lines: dropped last
PRIORITY_READING = 1  # raw and derived readings: dropped first at the cap

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class SpoolChunk:
    ids: tuple[int, ...]
    lines: int
    body: bytes


class Spool:
    """FIFO of line-protocol chunks (one chunk per poll or event), at most `max_bytes` of bodies."""

    def __init__(self, path: Path, max_bytes: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0), COALESCE(SUM(lines), 0) "
                               "FROM chunks").fetchone()
        self._bytes, self._lines = int(row[0]), int(row[1])
        self.dropped = self._counter("dropped_lines")

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def append(self, lines: list[str], priority: int = PRIORITY_READING) -> None:
        if not lines:
            return
        body = "\n".join(lines).encode()
        self._db.execute("BEGIN")
        self._db.execute("INSERT INTO chunks (priority, lines, body) VALUES (?, ?, ?)",
                         (priority, len(lines), body))
        self._bytes += len(body)
        self._lines += len(lines)
        if self._bytes > self.max_bytes:
            self._trim()
        self._db.execute("COMMIT")

    def _trim(self) -> None:
        dropped = 0
        for priority in (PRIORITY_READING, PRIORITY_RECORD):
            rows = self._db.execute("SELECT id, lines, LENGTH(body) FROM chunks WHERE priority=? "
                                    "ORDER BY id", (priority,)).fetchall()
            for cid, n, size in rows:
                if self._bytes <= self.max_bytes:
                    break
                self._db.execute("DELETE FROM chunks WHERE id=?", (cid,))
                self._bytes -= size
                self._lines -= n
                dropped += n
        self.dropped += dropped
        self._db.execute("INSERT INTO counters (name, value) VALUES ('dropped_lines', ?) "
                         "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (self.dropped,))

    def peek(self, max_lines: int) -> SpoolChunk | None:
        """The oldest chunks, together at most `max_lines` lines (at least one chunk)."""
        ids, bodies, total = [], [], 0
        for cid, n, body in self._db.execute("SELECT id, lines, body FROM chunks ORDER BY id"):
            if ids and total + n > max_lines:
                break
            ids.append(cid)
            bodies.append(bytes(body))
            total += n
        if not ids:
            return None
        return SpoolChunk(tuple(ids), total, b"\n".join(bodies))

    def remove(self, chunk: SpoolChunk) -> None:
        """Forget chunks the database has acknowledged (or rejected for good)."""
        self._db.execute("BEGIN")
        for cid in chunk.ids:
            row = self._db.execute("SELECT lines, LENGTH(body) FROM chunks WHERE id=?",
                                   (cid,)).fetchone()
            if row is None:  # trimmed meanwhile
                continue
            self._db.execute("DELETE FROM chunks WHERE id=?", (cid,))
            self._lines -= row[0]
            self._bytes -= row[1]
        self._db.execute("COMMIT")

    def backlog(self) -> int:
        """Lines waiting for the database."""
        return self._lines

    def size(self) -> int:
        return self._bytes

    def close(self) -> None:
        self._db.close()
