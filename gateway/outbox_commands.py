"""The platform's commands in the outbox: the ledger of requests (a redelivered request is
answered from here with its first result, never executed again), their results as outbox
messages for the uplink target the commands come from (so a result survives an uplink outage
like an event), the maintenance windows they
set, and the audit log's entries with who made the change.

A mixin of `Outbox`: it writes through the outbox's connection and its write path, so a full
disk degrades it like the rest (a result the disk refuses waits in memory and is sent directly;
its ledger entry waits beside it, so a redelivery is still answered once).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.outbox_hold import Hold

__all__ = ["CommandEntry", "OutboxCommands"]

PRIORITY_EVENT = 0  # as in gateway.outbox: results drain with the events, before telemetry


@dataclass(frozen=True)
class CommandEntry:
    id: str
    command: str
    received: float
    digest: str
    by: str | None
    result: bytes | None  # None: received and not answered (the gateway stopped meanwhile)


class OutboxCommands:
    db: sqlite3.Connection
    hold: Hold
    _bytes: int
    _write: Callable[..., bool]
    _tx: Callable[[], Any]
    results_target: str | None  # results go to the uplink target the commands come from

    _unwritten: dict[str, CommandEntry]  # ledger entries the disk did not take yet

    def _ledger(self) -> dict[str, CommandEntry]:
        return self._unwritten

    def command_entry(self, req_id: str) -> CommandEntry | None:
        held = self._ledger().get(req_id)
        if held is not None:
            return held
        row = self.db.execute("SELECT id, command, received, digest, by, result FROM command_log "
                              "WHERE id = ?", (req_id,)).fetchone()
        if row is None:
            return None
        return CommandEntry(*row[:5], row[5].encode() if row[5] is not None else None)

    def command_received(self, entry: CommandEntry, request: dict) -> None:
        """Note a request before it runs: a stop in the middle leaves it unanswered, and the
        next start answers it as interrupted."""
        def write() -> None:
            with self._tx() as db:
                db.execute("INSERT OR IGNORE INTO command_log (id, command, received, digest, by, "
                           "request) VALUES (?, ?, ?, ?, ?, ?)",
                           (entry.id, entry.command, entry.received, entry.digest, entry.by,
                            json.dumps(request, ensure_ascii=False)))

        if not self._write(write):
            self._ledger()[entry.id] = entry

    def commit_result(self, entry: CommandEntry, result: bytes,
                      messages: list[tuple[str, bytes, bytes | None]]) -> None:
        """The first answer to a request, in the ledger and in the outbox (one transaction)."""
        now = time.time()

        def write() -> None:
            with self._tx() as db:
                db.execute("INSERT INTO command_log (id, command, received, digest, by, request, "
                           "result) VALUES (?, ?, ?, ?, ?, '{}', ?) ON CONFLICT(id) DO UPDATE SET "
                           "result = excluded.result",
                           (entry.id, entry.command, entry.received, entry.digest, entry.by,
                            result.decode()))
                self._insert_results(db, messages, now, self.results_target)

        if self._write(write):
            self._ledger().pop(entry.id, None)
            self._bytes += sum(len(m[1]) for m in messages)
        else:
            self._ledger()[entry.id] = CommandEntry(entry.id, entry.command, entry.received,
                                                    entry.digest, entry.by, result)
            self.hold.add_results(messages, now, self.results_target)

    def _commit_ledger(self) -> None:
        """Write the ledger entries the disk refused before (`Outbox.flush`)."""
        with self._tx() as db:
            for e in self._unwritten.values():
                db.execute("INSERT INTO command_log (id, command, received, digest, by, request, "
                           "result) VALUES (?, ?, ?, ?, ?, '{}', ?) ON CONFLICT(id) DO UPDATE SET "
                           "result = coalesce(excluded.result, command_log.result)",
                           (e.id, e.command, e.received, e.digest, e.by,
                            e.result.decode() if e.result is not None else None))
        self._unwritten.clear()

    def add_results(self, messages: list[tuple[str, bytes, bytes | None]]) -> None:
        """Answer again (a redelivery, an interrupted request): outbox messages only."""
        now = time.time()

        def write() -> None:
            with self._tx() as db:
                self._insert_results(db, messages, now, self.results_target)

        if self._write(write):
            self._bytes += sum(len(m[1]) for m in messages)
        else:
            self.hold.add_results(messages, now, self.results_target)

    @staticmethod
    def _insert_results(db: sqlite3.Connection, messages: list, now: float,
                        target: str | None) -> None:
        db.executemany("INSERT INTO outbox (priority, topic, payload, qos, created, correlation, "
                       "target) VALUES (?, ?, ?, 1, ?, ?, ?)",
                       [(PRIORITY_EVENT, t, p, now, c, target) for t, p, c in messages])

    def unanswered_commands(self) -> list[CommandEntry]:
        rows = self.db.execute("SELECT id, command, received, digest, by FROM command_log "
                               "WHERE result IS NULL ORDER BY received").fetchall()
        return [CommandEntry(*r, None) for r in rows]

    def command_log(self, limit: int = 100) -> list[dict]:
        rows = self.db.execute("SELECT id, command, received, by, request, result FROM "
                               "command_log ORDER BY received DESC LIMIT ?", (limit,)).fetchall()
        return [{"id": i, "command": c, "received": at, "by": by, "request": json.loads(req),
                 "result": json.loads(res) if res else None}
                for i, c, at, by, req, res in rows][::-1]

    def prune_commands(self, before: float) -> None:
        """Forget requests older than `before` (wall clock): their ts is long outside any
        window, so a replay of one is refused as stale anyway."""
        def write() -> None:
            with self._tx() as db:
                db.execute("DELETE FROM command_log WHERE received < ?", (before,))

        self._write(write)

    # -- maintenance windows -------------------------------------------------------------------
    def maintenance_windows(self) -> list[tuple[str, float, float, str, str, str | None]]:
        return self.db.execute("SELECT subject, since, until, by, reason, command_id FROM "
                               "maintenance ORDER BY subject").fetchall()

    def save_maintenance(self, rows: list[tuple[str, float, float, str, str, str | None]],
                         ended: list[str]) -> bool:
        def write() -> None:
            with self._tx() as db:
                db.executemany("DELETE FROM maintenance WHERE subject = ?",
                               [(s,) for s in ended])
                db.executemany("INSERT INTO maintenance (subject, since, until, by, reason, "
                               "command_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(subject) DO "
                               "UPDATE SET since=excluded.since, until=excluded.until, "
                               "by=excluded.by, reason=excluded.reason, "
                               "command_id=excluded.command_id", rows)

        return self._write(write)

    # -- the audit log ---------------------------------------------------------------------------
    def audit(self, kind: str, subject: str, before: object, after: object, by: str | None,
              at: float) -> dict:
        """One entry in the permanent audit log (a config pushed, confirmed or rolled back)."""
        entry = {"at": at, "kind": kind, "subject": subject, "before": before, "after": after,
                 "by": by}

        def write() -> None:
            with self._tx() as db:
                db.execute("INSERT INTO audit_log (at, kind, subject, before, after, by) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (at, kind, subject, json.dumps(before), json.dumps(after), by))

        self._write(write)
        return entry

    # -- what acknowledgements and reminders copy -----------------------------------------------
    def alert_events(self, alert_id: str) -> list[dict]:
        """Every event of one alert (episode) in seq order: the alert log's, then those the
        disk has not taken yet."""
        rows = self.db.execute("SELECT payload FROM alert_log WHERE alert_id = ? ORDER BY seq",
                               (alert_id,)).fetchall()
        out = [json.loads(r[0]) for r in rows]
        seen = {e["seq"] for e in out}
        out += [h.event for h in self.hold.events
                if h.event.get("alert_id") == alert_id and h.seq not in seen]
        return out
