"""The sink's spool: line protocol waiting for the database, in a bounded SQLite file.

Every line goes through the spool, online or not, so there is one path and a restart picks up
where the last run stopped. The database copy is secondary to the MQTT outbox (which owns alert
durability), so at the size cap the oldest readings are dropped first and counted; alert and
health lines go only when nothing else is left. WAL with synchronous=NORMAL: a process crash
loses nothing committed, a power cut at most the last moments of raw series.

A full or read-only disk (or a state directory whose reserve went to the alerts, see
`gateway/state_dir.py`) never stops the pipeline: lines wait in memory (at most `MEMORY_MAX`
bytes, readings dropped first and counted) and the sink still writes them to the database from
there; they reach the file once the directory is healthy again.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.state_dir import StorageGuard, open_db

__all__ = ["Spool", "SpoolChunk", "PRIORITY_READING", "PRIORITY_RECORD", "MEMORY_MAX"]

PRIORITY_RECORD = 0  # alert and health lines: dropped last
PRIORITY_READING = 1  # raw and derived readings: dropped first at the cap
MEMORY_MAX = 8 * 1024 * 1024

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
    ids: tuple[int, ...]  # negative: in memory, not yet in the file
    lines: int
    body: bytes


class Spool:
    """FIFO of line-protocol chunks (one chunk per poll or event), at most `max_bytes` of bodies."""

    def __init__(self, path: Path, max_bytes: int, guard: StorageGuard | None = None):
        self.path = path
        self.max_bytes = max_bytes
        self.guard = guard if guard is not None else StorageGuard(path.parent)
        self._db, _ = open_db(path, "NORMAL", self.guard)
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0), COALESCE(SUM(lines), 0) "
                               "FROM chunks").fetchone()
        self._bytes, self._lines = int(row[0]), int(row[1])
        self.dropped = self._dropped_saved = self._counter("dropped_lines")
        self._memory: list[tuple[int, int, int, bytes]] = []  # (key < 0, priority, lines, body)
        self._memory_bytes = 0
        self._key = 0
        self._removed: dict[int, tuple[int, int]] = {}  # written, delete refused: id -> (lines, size)

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def append(self, lines: list[str], priority: int = PRIORITY_READING) -> None:
        if not lines:
            return
        body = "\n".join(lines).encode()
        self._key -= 1
        self._memory.append((self._key, priority, len(lines), body))
        self._memory_bytes += len(body)
        self._bytes += len(body)
        self._lines += len(lines)
        if not self.guard.may_write(self.path) or not self._write(self._flush_memory):
            self._bound_memory()

    def _write(self, fn: Callable[[], None]) -> bool:
        try:
            fn()
            return True
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.DatabaseError as exc:
            self.guard.failed(self.path, exc)
            return False

    def _flush_memory(self) -> None:
        with self._tx():
            for cid, (lines, size) in self._removed.items():
                self._db.execute("DELETE FROM chunks WHERE id=?", (cid,))
                self._bytes -= size
                self._lines -= lines
            self._removed = {}
            self._db.executemany("INSERT INTO chunks (priority, lines, body) VALUES (?, ?, ?)",
                                 [(p, n, b) for _, p, n, b in self._memory])
            self._memory, self._memory_bytes = [], 0
            if self._bytes > self.max_bytes:
                self._trim()
            elif self.dropped != self._dropped_saved:  # drops while lines waited in memory
                self._save_dropped()
        self.guard.wrote(self.path)

    @contextlib.contextmanager
    def _tx(self):
        state = (self._bytes, self._lines, self.dropped, self._dropped_saved,
                 list(self._memory), self._memory_bytes, dict(self._removed))
        self._db.execute("BEGIN")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            (self._bytes, self._lines, self.dropped, self._dropped_saved, self._memory,
             self._memory_bytes, self._removed) = state
            raise

    def _bound_memory(self) -> None:
        """While the disk refuses: at most MEMORY_MAX bytes wait, readings dropped first."""
        for priority in (PRIORITY_READING, PRIORITY_RECORD):
            for item in list(self._memory):
                if self._memory_bytes <= min(self.max_bytes, MEMORY_MAX):
                    return
                if item[1] == priority:
                    self._memory.remove(item)
                    self._memory_bytes -= len(item[3])
                    self._bytes -= len(item[3])
                    self._lines -= item[2]
                    self.dropped += item[2]

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
        self._save_dropped()

    def _save_dropped(self) -> None:
        self._db.execute("INSERT INTO counters (name, value) VALUES ('dropped_lines', ?) "
                         "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (self.dropped,))
        self._dropped_saved = self.dropped

    def peek(self, max_lines: int) -> SpoolChunk | None:
        """The oldest chunks, together at most `max_lines` lines (at least one chunk): those in
        the file, then those waiting in memory."""
        ids, bodies, total = [], [], 0
        rows = self._db.execute("SELECT id, lines, body FROM chunks ORDER BY id")
        for cid, n, body in itertools.chain(rows, [(k, n, b) for k, _, n, b in self._memory]):
            if cid in self._removed:
                continue
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
        in_memory = {cid for cid in chunk.ids if cid < 0}
        for item in [m for m in self._memory if m[0] in in_memory]:
            self._memory.remove(item)
            self._memory_bytes -= len(item[3])
            self._bytes -= len(item[3])
            self._lines -= item[2]
        stored = [cid for cid in chunk.ids if cid > 0]
        if not stored:
            return
        sizes = {cid: (n, size) for cid, n, size in self._db.execute(
            f"SELECT id, lines, LENGTH(body) FROM chunks WHERE id IN "
            f"({','.join('?' * len(stored))})", stored)}  # trimmed meanwhile: absent

        def delete() -> None:
            with self._tx():
                for cid, (n, size) in sizes.items():
                    self._db.execute("DELETE FROM chunks WHERE id=?", (cid,))
                    self._lines -= n
                    self._bytes -= size

        if not self._write(delete):
            self._removed.update(sizes)  # deleted once the disk takes writes again

    def backlog(self) -> int:
        """Lines waiting for the database."""
        return self._lines - sum(n for n, _ in self._removed.values())

    def size(self) -> int:
        return self._bytes

    def in_memory(self) -> int:
        """Lines waiting in memory because the disk refused them."""
        return sum(n for _, _, n, _ in self._memory)

    def close(self) -> None:
        if self._memory and self.guard.may_write(self.path):
            self._write(self._flush_memory)
        self._db.close()
