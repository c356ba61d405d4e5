"""What people and the status endpoint read from the outbox: how much waits (`depth`, and
`stats` for the endpoint's thread), the permanent alert log (every alert and fault event ever
committed, with when the broker and the platform got it) and the audit log of threshold changes
between runs (R13).

A mixin of `Outbox`: the logs live in its database and commit with its events.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.outbox_hold import Hold

__all__ = ["OutboxViews"]

PRIORITY_EVENT = 0  # as in gateway.outbox
PRIORITY_TELEMETRY = 1


class OutboxViews:
    db: sqlite3.Connection
    path: Path
    exclusive: bool
    hold: Hold
    _acked: dict
    _snapshot: dict
    _reader: sqlite3.Connection | None
    _reader_lock: threading.Lock
    _write: Callable[..., bool]
    _tx: Callable[[], Any]

    def depth(self) -> dict[str, int]:
        """Messages not yet accepted by the broker (with receipts, PUBACKed events waiting for
        their receipt are `unconfirmed()`, not here)."""
        rows = dict(self.db.execute("SELECT priority, count(*) FROM outbox WHERE sent IS NULL "
                                    "GROUP BY priority").fetchall())
        acked = [0, 0]
        for _, _, seq, _ in self._acked.values():
            acked[seq is None] += 1
        d = {"events": max(0, rows.get(PRIORITY_EVENT, 0) - acked[0])
             + sum(h.delivered is None for h in self.hold.events),
             "telemetry": max(0, rows.get(PRIORITY_TELEMETRY, 0) - acked[1])
             + len(self.hold.telemetry)}
        self._snapshot.update(d)
        return d

    def stats(self) -> dict:
        """Depth, the oldest waiting event and the unconfirmed events, for the status endpoint's
        thread (its own read connection; in exclusive mode the loop's last figures)."""
        with self._reader_lock:
            try:
                if self._reader is None and not self.exclusive:
                    self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                                   check_same_thread=False)
                if self._reader is None:
                    return dict(self._snapshot)
                rows = self._reader.execute(
                    "SELECT priority, sent IS NULL, count(*), min(created) FROM outbox "
                    "GROUP BY 1, 2").fetchall()
            except sqlite3.Error:
                return dict(self._snapshot)
        held = list(self.hold.events)
        unsent = [h.created for h in held if h.delivered is None]
        waiting = [h.created for h in held if h.delivered is not None and h.confirmed is None]
        by = {(p, bool(u)): (n, oldest) for p, u, n, oldest in rows}
        events, oldest = by.get((PRIORITY_EVENT, True), (0, None))
        unconfirmed, oldest_unconfirmed = by.get((PRIORITY_EVENT, False), (0, None))
        return {"events": events + len(unsent),
                "telemetry": sum(n for (p, _), (n, _) in by.items() if p == PRIORITY_TELEMETRY)
                + len(self.hold.telemetry),
                "oldest_event": min([x for x in [oldest, *unsent] if x is not None],
                                    default=None),
                "unconfirmed": unconfirmed + len(waiting),
                "oldest_unconfirmed": min([x for x in [oldest_unconfirmed, *waiting]
                                           if x is not None], default=None)}


    def alert_log(self, limit: int = 100) -> list[dict]:
        rows = self.db.execute("SELECT payload, delivered_at, confirmed_at FROM alert_log "
                               "ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for payload, delivered, confirmed in rows:
            ev = json.loads(payload)
            ev["delivered_at"] = delivered
            ev["confirmed_at"] = confirmed
            out.append(ev)
        return out[::-1]

    def audit_thresholds(self, thresholds: dict[str, dict], at: float,
                         by: str | None = None) -> list[dict]:
        """Record every threshold that differs from the last run's in the permanent audit log
        (R13: every threshold change is audit-logged), with who changed it when known (a
        command's `by`); returns the entries. When the disk refuses, the entries are only
        logged, and found again (and written) at the next start."""
        row = self.db.execute("SELECT value FROM settings WHERE key='thresholds'").fetchone()
        before = json.loads(row[0]) if row else None
        entries = []
        if before is not None:
            for point in sorted(set(before) | set(thresholds)):
                old, new = before.get(point), thresholds.get(point)
                if old != new:
                    entries.append({"at": at, "kind": "thresholds", "subject": point,
                                    "before": old, "after": new, "by": by})

        def write() -> None:
            with self._tx() as db:
                db.executemany(
                    "INSERT INTO audit_log (at, kind, subject, before, after, by) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(e["at"], e["kind"], e["subject"], json.dumps(e["before"]),
                      json.dumps(e["after"]), by) for e in entries])
                db.execute("INSERT INTO settings (key, value) VALUES ('thresholds', ?) "
                           "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                           (json.dumps(thresholds, sort_keys=True),))

        self._write(write)
        return entries

    def audit_log(self, limit: int = 100) -> list[dict]:
        rows = self.db.execute("SELECT at, kind, subject, before, after, by FROM audit_log "
                               "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"at": at, "kind": k, "subject": s, "before": json.loads(b) if b else None,
                 "after": json.loads(a) if a else None, "by": by}
                for at, k, s, b, a, by in rows][::-1]
