"""What people and the status endpoint read from the outbox: how much waits for each uplink
target (`depth`, and `stats` for the endpoint's thread), the permanent alert log (every alert and fault event ever
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
    from gateway.outbox_cursors import Deliveries, TargetState
    from gateway.outbox_hold import Hold

__all__ = ["OutboxViews"]

PRIORITY_EVENT = 0  # as in gateway.outbox
PRIORITY_TELEMETRY = 1


class OutboxViews:
    db: sqlite3.Connection
    path: Path
    exclusive: bool
    hold: Hold
    deliveries: Deliveries
    _deliveries: Deliveries | None
    _snapshot: dict
    _reader: sqlite3.Connection | None
    _reader_lock: threading.Lock
    _write: Callable[..., bool]
    _tx: Callable[[], Any]

    def depth(self, target: str | None = None) -> dict[str, int]:
        """Messages a target's broker has not accepted yet (with receipts, PUBACKed events
        waiting for their receipt are `unconfirmed()`, not here): for one target, or the most
        any target has waiting (the single target's, when there is one)."""
        d = self.deliveries
        if target is not None:
            return self._depth(self.db, d.state(target))
        per = [self._depth(self.db, s) for s in d.states.values()] or [self._depth(self.db)]
        out = {k: max(p[k] for p in per) for k in ("events", "telemetry")}
        self._snapshot.update(out)
        return out

    def _depth(self, db: sqlite3.Connection, st: TargetState | None = None) -> dict[str, int]:
        counts = [self._waiting(db, st, lane)[0] for lane in (PRIORITY_EVENT, PRIORITY_TELEMETRY)]
        name = st.name if st is not None else None
        held = list(self.hold.telemetry)
        return {"events": counts[0] + sum(not h.has(name) for h in list(self.hold.events))
                + sum(m.priority == PRIORITY_EVENT and name not in m.acked
                      and m.target in (None, name) for m in held),
                "telemetry": counts[1] + sum(m.priority != PRIORITY_EVENT and name not in m.acked
                                             for m in held)}

    @staticmethod
    def _waiting(db: sqlite3.Connection, st: TargetState | None, lane: int
                 ) -> tuple[int, float | None]:
        """How many committed rows of a lane `st` has not sent (without a target: all of
        them), and when the oldest was committed."""
        if st is None:
            return db.execute("SELECT count(*), min(created) FROM outbox WHERE priority = ?",
                              (lane,)).fetchone()
        return db.execute(
            "SELECT count(*), min(created) FROM outbox WHERE priority = ? AND id > ? AND "
            "(target IS NULL OR target = ?) AND id NOT IN (SELECT value FROM json_each(?))",
            (lane, st.done[lane], st.name, json.dumps(sorted(st.ahead[lane])))).fetchone()

    def stats(self) -> dict:
        """Depth, the oldest waiting event and the unconfirmed events, overall (the most any
        target has waiting) and per target under `targets`, for the status endpoint's thread
        (its own read connection; in exclusive mode the loop's last figures)."""
        with self._reader_lock:
            try:
                if self._reader is None and not self.exclusive:
                    self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                                   check_same_thread=False)
                if self._reader is None or self._deliveries is None:
                    return dict(self._snapshot)
                states = list(self._deliveries.states.values())
                per = {s.name: self._target_stats(self._reader, s) for s in states}
            except sqlite3.Error:
                return dict(self._snapshot)
        if not per:
            return dict(self._snapshot)
        oldest = [p["oldest_event"] for p in per.values() if p["oldest_event"] is not None]
        waiting = [p["oldest_unconfirmed"] for p in per.values()
                   if p["oldest_unconfirmed"] is not None]
        return {"events": max(p["events"] for p in per.values()),
                "telemetry": max(p["telemetry"] for p in per.values()),
                "oldest_event": min(oldest, default=None),
                "unconfirmed": max(p["unconfirmed"] for p in per.values()),
                "oldest_unconfirmed": min(waiting, default=None), "targets": per}

    def _target_stats(self, db: sqlite3.Connection, st: TargetState) -> dict:
        depth = self._depth(db, st)
        _, oldest = self._waiting(db, st, PRIORITY_EVENT)
        unsent = [h.created for h in list(self.hold.events) if not h.has(st.name)]
        unconfirmed = [u.created for u in list(st.unconfirmed.values())]
        unconfirmed += [h.created for h in list(self.hold.events) if h.waiting(st.name)]
        return {**depth, "oldest_event": min([x for x in (oldest, *unsent) if x is not None],
                                             default=None),
                "unconfirmed": len(unconfirmed),
                "oldest_unconfirmed": min(unconfirmed, default=None)}

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
