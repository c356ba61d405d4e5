"""The history store's file: its tables, the daemon's writes, retention and the size cap.

Tables: `series` (a point's name, quantity and unit, by id), `stats` (per point and 5-minute
window: good samples, polls, min, max and sum of the good values, the last quality; one row per
window that saw a poll, keyed by point then time so a point's month is one range), `device_state`
(each device's online/offline changes, one row at the first poll of each run), `runs` (when the
gateway ran: start, last sign of life, clean stop), `readings` (manual readings, see
`readings.py`) and `reports` (months whose summary went to the outbox).

Writes never raise: like the InfluxDB spool they are a low-value writer of the state directory
(`gateway/state_dir.py`). While the disk refuses them, or while the outbox's reserve is out, they
wait in memory (at most `MEMORY_MAX` bytes; the oldest statistics go first, counted and logged)
and are written once the directory is healthy. A window written twice (the open window flushed at
a stop, completed after the restart) is merged. Retention keeps the current month and
`keep_months` whole months before it; beyond the cap the oldest day goes first, logged, although
the configured cap is checked against 13 months at load (`sizing.py`).

WAL with synchronous=NORMAL: a crash loses nothing committed, a power cut at most the last
moments, which the report shows as missing data rather than wrong data.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from gateway.state_dir import StorageError, StorageGuard, open_db

__all__ = ["HistoryStore", "SCHEMA", "MEMORY_MAX", "month_start"]

log = logging.getLogger("minewatch.history")

MEMORY_MAX = 8 * 1024 * 1024
_ROW_MEMORY = 64  # what a waiting stats row costs in memory, for the bound

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, quantity TEXT NOT NULL, unit TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stats (
    series INTEGER NOT NULL,
    start INTEGER NOT NULL,            -- window start, UTC epoch s (aligned to 300 s)
    count INTEGER NOT NULL,            -- good samples
    samples INTEGER NOT NULL,          -- polls of any quality
    min REAL, max REAL, sum REAL,      -- of the good samples; NULL when count = 0
    quality INTEGER NOT NULL,          -- the window's last quality code
    PRIMARY KEY (series, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_state (
    device TEXT NOT NULL, t REAL NOT NULL, online INTEGER NOT NULL,
    PRIMARY KEY (device, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    started REAL PRIMARY KEY, last_seen REAL NOT NULL, stopped REAL);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reading_id TEXT NOT NULL UNIQUE,
    point TEXT NOT NULL, value REAL NOT NULL, at REAL NOT NULL,
    by TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', source TEXT NOT NULL,
    entered_at REAL NOT NULL,
    state TEXT NOT NULL,               -- pending, done, rejected
    result TEXT,                       -- JSON: grade, the automatic value, the comparison
    processed_at REAL);
CREATE INDEX IF NOT EXISTS readings_at ON readings (at);
CREATE INDEX IF NOT EXISTS readings_state ON readings (state);
CREATE TABLE IF NOT EXISTS reports (month TEXT PRIMARY KEY, committed_at REAL NOT NULL);
"""


def month_start(t: float, tz: ZoneInfo, back: int = 0) -> float:
    """Epoch seconds of the first instant of the local month of `t`, `back` months earlier."""
    d = datetime.fromtimestamp(t, tz)
    y, m = d.year, d.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return datetime(y, m, 1, tzinfo=tz).timestamp()


class HistoryStore:
    """The daemon's handle on the store (the CLI and the report read it with `HistoryReader`)."""

    def __init__(self, path: Path, max_bytes: int, keep_months: int = 13, *,
                 guard: StorageGuard | None = None, tz: ZoneInfo | None = None):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep_months = keep_months
        self.tz = tz or ZoneInfo("UTC")
        self.guard = guard if guard is not None else StorageGuard(self.path.parent)
        # exclusive: a disk that cannot take the shared-memory file; other readers wait then
        self.db, self.exclusive = open_db(self.path, "NORMAL", self.guard)
        self.db.execute("PRAGMA busy_timeout=5000")  # the CLI adds readings to the same file
        try:
            self.db.executescript(SCHEMA)
        except sqlite3.OperationalError as exc:
            self.db.close()
            raise StorageError(f"cannot prepare the history store {self.path}: {exc}") from None
        self._series = dict(self.db.execute("SELECT name, id FROM series").fetchall())
        self._rows: list[tuple] = []  # stats rows waiting for the disk
        self._states: list[tuple[str, float, int]] = []
        self._run: tuple[float, float, float | None] | None = None  # (started, seen, stopped)
        self._run_dirty = False
        self._other: list[Callable[[sqlite3.Connection], None]] = []  # readings, reports
        self.dropped_rows = 0
        self.pruned_for_cap = 0
        self._owner = threading.get_ident()
        self._snapshot = {"path": str(self.path), "bytes": 0, "max_bytes": max_bytes,
                          "keep_months": keep_months, "waiting_writes": 0, "dropped_rows": 0,
                          "pending_readings": 0}
        self._pruned_on = ""

    def close(self) -> None:
        self.flush()
        waiting = len(self._rows) + len(self._states) + len(self._other)
        if waiting:
            log.error("history store %s: %d writes could not be made before the stop (the disk "
                      "refused them); the monthly report will show that time as missing",
                      self.path, waiting, extra={"event": "history_lost_at_stop"})
        self.db.close()

    # -- what the daemon records ----------------------------------------------------------
    def add_window(self, start: float, names: list[str], quantities: list[str],
                   units: list[str], count: np.ndarray, samples: np.ndarray, vmin: np.ndarray,
                   vmax: np.ndarray, vsum: np.ndarray, quality: np.ndarray) -> None:
        """One statistics window of every point (arrays by point index); points without a poll
        in it are left out."""
        window = int(start)
        for i in np.flatnonzero(samples > 0).tolist():
            sid = self._series_id(names[i], quantities[i], units[i])
            n = int(count[i])
            self._rows.append((sid, window, n, int(samples[i]),
                               float(vmin[i]) if n else None, float(vmax[i]) if n else None,
                               float(vsum[i]) if n else None, int(quality[i])))
        self._bound()
        self.flush()

    def device_online(self, device: str, t: float, online: bool) -> None:
        """A change of a device's online state (and its state at the first poll of a run)."""
        self._states.append((device, float(t), int(online)))

    def run_started(self, t: float) -> None:
        self._run = (float(t), float(t), None)
        self._run_dirty = True
        self.flush()

    def run_seen(self, t: float) -> None:
        """The gateway is still running at `t` (a crash then loses at most the time since)."""
        if self._run is not None:
            self._run = (self._run[0], float(t), None)
            self._run_dirty = True

    def run_stopped(self, t: float) -> None:
        if self._run is not None:
            self._run = (self._run[0], float(t), float(t))
            self._run_dirty = True

    def later(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Another write (a reading's result, a published report) made with the next flush,
        kept in memory until the disk takes it."""
        self._other.append(write)
        self.flush()

    # -- writing --------------------------------------------------------------------------
    def _series_id(self, name: str, quantity: str, unit: str) -> int:
        sid = self._series.get(name)
        if sid is None:
            sid = self._series[name] = (max(self._series.values(), default=0) + 1)
            self._other.insert(0, lambda db, s=(sid, name, quantity, unit): db.execute(
                "INSERT OR IGNORE INTO series (id, name, quantity, unit) VALUES (?, ?, ?, ?)", s))
        return sid

    def _bound(self) -> None:
        excess = len(self._rows) - MEMORY_MAX // _ROW_MEMORY
        if excess > 0:
            del self._rows[:excess]
            self.dropped_rows += excess
            log.error("history store %s: %d statistics rows dropped, the disk has not taken "
                      "them for too long", self.path, excess,
                      extra={"event": "history_dropped", "rows": excess})

    def pending(self) -> int:
        return len(self._rows) + len(self._states) + len(self._other) + self._run_dirty

    def flush(self) -> bool:
        """Write what waits, in one transaction; True when nothing is left waiting."""
        if not self.pending():
            return True
        if not self.guard.may_write(self.path):
            return False
        rows, states, other = self._rows, self._states, self._other
        run = self._run if self._run_dirty else None
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                # a window seen again (flushed at a stop, then completed) is merged
                self.db.executemany(
                    "INSERT INTO stats (series, start, count, samples, min, max, sum, quality) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series, start) DO UPDATE SET "
                    "count = count + excluded.count, samples = samples + excluded.samples, "
                    "min = min(coalesce(min, excluded.min), coalesce(excluded.min, min)), "
                    "max = max(coalesce(max, excluded.max), coalesce(excluded.max, max)), "
                    "sum = coalesce(sum, 0) + coalesce(excluded.sum, 0), "
                    "quality = excluded.quality", rows)
                self.db.executemany("INSERT OR REPLACE INTO device_state (device, t, online) "
                                    "VALUES (?, ?, ?)", states)
                if run is not None:
                    self.db.execute("INSERT INTO runs (started, last_seen, stopped) VALUES "
                                    "(?, ?, ?) ON CONFLICT (started) DO UPDATE SET "
                                    "last_seen = excluded.last_seen, stopped = excluded.stopped",
                                    run)
                for write in other:  # after the rows: a prune also takes what just came in
                    write(self.db)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a bug, not the disk
        except sqlite3.DatabaseError as exc:
            self.guard.failed(self.path, exc)
            return False
        del self._rows[:len(rows)], self._states[:len(states)], self._other[:len(other)]
        if run is not None and run == self._run:
            self._run_dirty = False
        self.guard.wrote(self.path)
        return not self.pending()

    # -- retention and the cap ------------------------------------------------------------
    def used_bytes(self) -> int:
        page = self.db.execute("PRAGMA page_size").fetchone()[0]
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * page

    def prune(self, now: float) -> None:
        """Once a day: drop what is older than the kept months; then, while the file is over its
        cap, the oldest day (logged: the cap was set too small after all)."""
        day = datetime.fromtimestamp(now, self.tz).strftime("%Y-%m-%d")
        if day == self._pruned_on or not self.guard.may_write(self.path):
            return
        keep_from = month_start(now, self.tz, back=self.keep_months)

        def older_than(cutoff: float) -> Callable[[sqlite3.Connection], None]:
            def write(db: sqlite3.Connection) -> None:
                for (sid,) in db.execute("SELECT id FROM series").fetchall():
                    db.execute("DELETE FROM stats WHERE series=? AND start<?", (sid, cutoff))
                # each device's last state before the cutoff stays: it holds until its next change
                db.execute("DELETE FROM device_state WHERE t<? AND t<(SELECT max(d.t) FROM "
                           "device_state d WHERE d.device=device_state.device AND d.t<?)",
                           (cutoff, cutoff))
                db.execute("DELETE FROM runs WHERE last_seen<?", (cutoff,))
            return write

        self.later(older_than(keep_from))
        for _ in range(400):
            if self.used_bytes() <= self.max_bytes:
                break
            oldest = self.db.execute("SELECT min(start) FROM stats").fetchone()[0]
            if oldest is None:
                break
            self.later(older_than(oldest + 86400))
            self.pruned_for_cap += 1
            log.error("history store %s is over its cap of %d bytes: dropped the statistics of "
                      "%s; raise [history] max_bytes", self.path, self.max_bytes,
                      datetime.fromtimestamp(oldest, self.tz).strftime("%Y-%m-%d"),
                      extra={"event": "history_over_cap"})
        self._pruned_on = day

    def health(self) -> dict:
        """The heartbeat's `history` block; from another thread (the status endpoint's) the
        loop's last figures, so the loop's connection is only ever used by the loop."""
        if threading.get_ident() != self._owner:
            return dict(self._snapshot)
        try:
            used = self.used_bytes()
            waiting = self.db.execute("SELECT count(*) FROM readings WHERE state='pending'"
                                      ).fetchone()[0]
        except sqlite3.Error:  # a damaged or locked file: the heartbeat goes out regardless
            used, waiting = 0, 0
        self._snapshot = {"path": str(self.path), "bytes": used, "max_bytes": self.max_bytes,
                          "keep_months": self.keep_months, "waiting_writes": self.pending(),
                          "dropped_rows": self.dropped_rows, "pending_readings": waiting}
        return dict(self._snapshot)
