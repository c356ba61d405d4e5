"""Where a report's figures come from, read-only: the history store and the outbox's alert log.

Both are opened read-only (`mode=ro`) beside the running daemon, which keeps writing them (WAL
lets a reader see the last commit). A store that does not exist yet (a gateway that never ran
with it) reads as empty, so a report says "no data" instead of failing.

The alert log is the outbox's permanent log of every alert and fault event (not copied here).
Acknowledgements (issue 17's `ack` command) are read from it too: an episode's acknowledgement is
the first alert-log row of its `alert_id` with state `acknowledged`; that row's `observed_at` is
when it was acknowledged and its payload's `ack.by` who acknowledged it
(docs/contracts.md#acknowledgements-in-the-alert-log).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

__all__ = ["ReportSource", "Series"]


class Series:
    """One point's 5-minute windows in a period, oldest first (arrays of equal length)."""

    __slots__ = ("start", "count", "samples", "min", "max", "mean")

    def __init__(self, rows: list[tuple]):
        a = np.array(rows, dtype=np.float64).reshape(-1, 6)
        self.start, self.count, self.samples = a[:, 0], a[:, 1], a[:, 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            self.min, self.max = a[:, 3], a[:, 4]
            self.mean = np.where(a[:, 1] > 0, a[:, 5] / a[:, 1], np.nan)

    def __len__(self) -> int:
        return self.start.size


def _connect(path: Path) -> sqlite3.Connection | None:
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.Error:
        return None


class ReportSource:
    def __init__(self, history_path: Path, outbox_path: Path):
        self.history = _connect(history_path)
        self.outbox = _connect(outbox_path)
        self.history_path, self.outbox_path = history_path, outbox_path

    def close(self) -> None:
        for db in (self.history, self.outbox):
            if db is not None:
                db.close()

    def _rows(self, db: sqlite3.Connection | None, sql: str, args: tuple = ()) -> list[tuple]:
        if db is None:
            return []
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    # -- the history store ------------------------------------------------------------------
    def series(self, point: str, start: float, end: float) -> Series:
        rows = self._rows(self.history,
                          "SELECT s.start, s.count, s.samples, s.min, s.max, s.sum FROM stats s "
                          "JOIN series p ON p.id = s.series WHERE p.name=? AND s.start>=? AND "
                          "s.start<? ORDER BY s.start", (point, int(start), end))
        return Series([tuple(np.nan if v is None else v for v in r) for r in rows])

    def runs(self, start: float, end: float) -> list[tuple[float, float]]:
        """When the gateway ran, overlapping [start, end): (from, to) with `to` its clean stop
        or, after a crash, its last sign of life."""
        rows = self._rows(self.history, "SELECT started, coalesce(stopped, last_seen) FROM runs "
                          "WHERE started<? AND coalesce(stopped, last_seen)>? ORDER BY started",
                          (end, start))
        return [(float(a), float(b)) for a, b in rows]

    def device_states(self, until: float) -> dict[str, list[tuple[float, bool]]]:
        rows = self._rows(self.history, "SELECT device, t, online FROM device_state WHERE t<? "
                          "ORDER BY device, t", (until,))
        out: dict[str, list[tuple[float, bool]]] = {}
        for device, t, online in rows:
            out.setdefault(device, []).append((float(t), bool(online)))
        return out

    def readings(self, start: float, end: float) -> list[dict]:
        rows = self._rows(self.history, "SELECT reading_id, point, value, at, by, note, source, "
                          "state, result FROM readings WHERE at>=? AND at<? ORDER BY at",
                          (start, end))
        keys = ("reading_id", "point", "value", "at", "by", "note", "source", "state")
        return [{**dict(zip(keys, r[:8], strict=True)),
                 "result": json.loads(r[8]) if r[8] else None} for r in rows]

    def months_reported(self) -> set[str]:
        return {r[0] for r in self._rows(self.history, "SELECT month FROM reports")}

    # -- the alert log ----------------------------------------------------------------------
    def alert_rows(self, start: float, end: float) -> list[dict]:
        """Every alert-log event of the episodes that overlap [start, end), oldest first, each
        the event as published with its `seq`."""
        rows = self._rows(self.outbox, "SELECT alert_id, state, observed_at, payload FROM "
                          "alert_log WHERE observed_at<? ORDER BY seq", (end,))
        last: dict[str, tuple[str, float]] = {}
        for alert_id, state, t, _ in rows:
            if state in ("raised", "escalated", "downgraded", "cleared"):
                last[alert_id] = (state, t)
        keep = {a for a, (state, t) in last.items() if state != "cleared" or t >= start}
        return [json.loads(payload) for alert_id, _, _, payload in rows if alert_id in keep]
