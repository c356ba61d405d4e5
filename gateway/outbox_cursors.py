"""Where each uplink target is in the outbox (several northbound targets, issue 20).

One outbox, several targets (`[[uplink.mqtt]]`), each draining it at its own pace: the city
platform's broker may be down for an hour while the province's takes every event. Per target and
lane (0: events, records and command results, drained first; 1: telemetry) a cursor says up to
which row the target has PUBACKed every row; rows it PUBACKed beyond its cursor (a window's
PUBACKs, which arrive out of step with the other lane) are `ahead`; with receipts, the events it
PUBACKed that its platform has not confirmed are `unconfirmed`, sent again every
`receipt_timeout`. A row leaves the outbox when every target has it, and every target with
receipts its platform's receipt. A row with a `target` (a command's result) is for that target
only: the others pass over it. So an event one target has and the other has not waits for the
other, and is never sent twice to the same one while the gateway runs.

The state lives in memory, where the publishers' answers change it, and is written through to
the tables `cursors`, `ahead` and `unconfirmed` in the outbox's own write path: a disk that
refuses keeps the writes queued in order (`pending`) until the next flush. A crash loses at most
what was queued: those rows are sent once more (QoS 1 allows it; the platform dedupes events by
`event_id`).

An outbox written before targets existed has these tables empty: the first target (the only one
that config could have) takes over what the file marks as PUBACKed (`sent`); any other starts
from what the outbox holds. Later, a target no longer configured is forgotten (what waited only
for it is released) and a new one starts from what the outbox holds at that start.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

__all__ = ["Deliveries", "Target", "TargetState", "Unconfirmed"]

log = logging.getLogger("minewatch.outbox")

LANES = (0, 1)


@dataclass(frozen=True)
class Target:
    """An uplink target as the outbox knows it: its name and whether it waits for receipts."""

    name: str
    receipts: bool = False
    receipt_timeout: float = 60.0


@dataclass(frozen=True)
class Unconfirmed:
    seq: int | None
    event_id: str | None
    created: float
    sent: float  # the latest PUBACK: sent again receipt_timeout after it


class TargetState:
    def __init__(self, target: Target):
        self.target = target
        self.name = target.name
        self.done = [0, 0]
        self.ahead: tuple[set[int], set[int]] = (set(), set())
        self.unconfirmed: dict[int, Unconfirmed] = {}
        self.resend_floor = 0.0

    def passed(self, lane: int, rid: int, row_target: str | None = None) -> bool:
        """Whether this target has the row (PUBACKed, confirmed, or the row is not for it)."""
        return (row_target is not None and row_target != self.name) \
            or rid <= self.done[lane] or rid in self.ahead[lane]

    def waiting(self, rid: int) -> bool:
        """PUBACKed, and this target's platform has not confirmed it yet."""
        return rid in self.unconfirmed

    def clock_stepped(self, jump: float) -> None:
        """Move the PUBACK times this target waits on by a step of the wall clock."""
        self.unconfirmed = {rid: replace(u, sent=u.sent + jump)
                            for rid, u in self.unconfirmed.items()}
        if self.resend_floor:
            self.resend_floor += jump

    def due(self) -> float:
        """Unconfirmed events PUBACKed at or before this time are due to be sent again."""
        return max(time.time() - self.target.receipt_timeout, self.resend_floor)


class Deliveries:
    def __init__(self, targets: Sequence[Target]):
        self.targets = list(targets)
        self.states = {t.name: TargetState(t) for t in self.targets}
        self.pending: list[tuple[str, tuple]] = []  # writes the disk has not taken yet

    def clock_stepped(self, jump: float) -> None:
        for st in self.states.values():
            st.clock_stepped(jump)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    def state(self, name: str | None = None) -> TargetState:
        if name is None:
            return self.states[self.targets[0].name]
        try:
            return self.states[name]
        except KeyError:
            raise KeyError(f"no uplink target {name!r}; the outbox knows "
                           f"{', '.join(self.names) or 'none'}") from None

    def _sql(self, sql: str, *params) -> None:
        self.pending.append((sql, params))

    # -- loading ------------------------------------------------------------------------------
    def load(self, db: sqlite3.Connection) -> None:
        """Read the targets' state; take over an older file's PUBACKs for the first target;
        forget targets no longer configured. The writes this needs are queued in `pending`."""
        for st in self.states.values():
            for lane, done in db.execute("SELECT lane, done FROM cursors WHERE target = ?",
                                         (st.name,)):
                st.done[lane] = done
            for rid, lane in db.execute("SELECT id, lane FROM ahead WHERE target = ?",
                                        (st.name,)):
                if rid > st.done[lane]:
                    st.ahead[lane].add(rid)
            for rid, seq, eid, created, sent in db.execute(
                    "SELECT id, seq, event_id, created, sent FROM unconfirmed WHERE target = ?",
                    (st.name,)):
                st.unconfirmed[rid] = Unconfirmed(seq, eid, created, sent)
            if st.unconfirmed and not st.target.receipts:
                # receipts were switched off: its broker's PUBACK is all it waits for now, and
                # it had that (kept, these events would never be sent again nor leave)
                log.info("uplink target %r no longer waits for receipts: %d events its broker "
                         "acknowledged leave the outbox", st.name, len(st.unconfirmed),
                         extra={"event": "receipts_dropped", "target": st.name})
                st.unconfirmed.clear()
                self._sql("DELETE FROM unconfirmed WHERE target = ?", st.name)
        if not self.targets:
            return  # no uplink: every row waits for the target a later config brings
        known = {r[0] for r in db.execute("SELECT target FROM cursors UNION "
                                          "SELECT target FROM unconfirmed")}
        started = db.execute("SELECT 1 FROM meta WHERE key = 'targets'").fetchone() is not None
        if not started:
            self._take_over(db, self.states[self.targets[0].name])
            self._sql("INSERT INTO meta (key, value) VALUES ('targets', 1) "
                      "ON CONFLICT(key) DO NOTHING")
        for name in sorted(known - set(self.states)):
            log.warning("uplink target %r is no longer configured: what waited only for it "
                        "leaves the outbox", name, extra={"event": "target_forgotten",
                                                         "target": name})
            for table in ("cursors", "ahead", "unconfirmed"):
                self._sql(f"DELETE FROM {table} WHERE target = ?", name)
        for name in self.names:
            if started and name not in known:
                n = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
                log.info("uplink target %r is new: it gets the %d messages the outbox holds now",
                         name, n, extra={"event": "target_new", "target": name})
            for lane in LANES:
                self._cursor(self.states[name], lane)

    def _take_over(self, db: sqlite3.Connection, st: TargetState) -> None:
        """What an outbox of before targets marks as PUBACKed is the first target's."""
        rows = db.execute("SELECT id, priority, seq, event_id, created, sent FROM outbox "
                          "WHERE sent IS NOT NULL").fetchall()
        for rid, lane, seq, eid, created, sent in rows:
            self._pass(st, lane, rid)
            if st.target.receipts and seq is not None:
                self._wait(st, rid, Unconfirmed(seq, eid, created, sent))
        for lane in LANES:
            self.advance(db, st, lane)

    # -- changes ------------------------------------------------------------------------------
    def _cursor(self, st: TargetState, lane: int) -> None:
        self._sql("INSERT INTO cursors (target, lane, done) VALUES (?, ?, ?) ON CONFLICT"
                  "(target, lane) DO UPDATE SET done = excluded.done", st.name, lane,
                  st.done[lane])

    def _pass(self, st: TargetState, lane: int, rid: int) -> None:
        if not st.passed(lane, rid):
            st.ahead[lane].add(rid)
            self._sql("INSERT OR IGNORE INTO ahead (target, id, lane) VALUES (?, ?, ?)",
                      st.name, rid, lane)

    def _wait(self, st: TargetState, rid: int, u: Unconfirmed) -> None:
        st.unconfirmed[rid] = u
        self._sql("INSERT INTO unconfirmed (target, id, seq, event_id, created, sent) VALUES "
                  "(?, ?, ?, ?, ?, ?) ON CONFLICT(target, id) DO UPDATE SET sent = excluded.sent",
                  st.name, rid, u.seq, u.event_id, u.created, u.sent)

    def advance(self, db: sqlite3.Connection, st: TargetState, lane: int) -> None:
        """Move the cursor over the rows the target has (ahead of it, or not for it)."""
        before = st.done[lane]
        try:
            while True:
                rows = db.execute("SELECT id, target FROM outbox WHERE priority = ? AND id > ? "
                                  "ORDER BY id LIMIT 64", (lane, st.done[lane])).fetchall()
                for rid, row_target in rows:
                    if rid not in st.ahead[lane] and row_target in (None, st.name):
                        break
                    st.done[lane] = rid
                else:
                    if len(rows) == 64:
                        continue
                break
        except sqlite3.OperationalError:
            return  # a read the disk refuses: the rows stay ahead, the cursor waits
        if st.done[lane] != before:
            st.ahead[lane].difference_update([r for r in st.ahead[lane] if r <= st.done[lane]])
            self._sql("DELETE FROM ahead WHERE target = ? AND lane = ? AND id <= ?", st.name,
                      lane, st.done[lane])
            self._cursor(st, lane)

    def acked(self, db: sqlite3.Connection, name: str, lane: int, rid: int,
              row_target: str | None, seq: int | None, event_id: str | None, created: float,
              now: float) -> None:
        """Target `name` PUBACKed the committed row `rid`."""
        st = self.state(name)
        had = st.passed(lane, rid, row_target)
        self._pass(st, lane, rid)
        if st.target.receipts and seq is not None and (not had or st.waiting(rid)):
            self._wait(st, rid, Unconfirmed(seq, event_id, created, now))
            self._sql("UPDATE outbox SET sent = ? WHERE id = ?", now, rid)
        self.advance(db, st, lane)
        if seq is not None and self.everyone_has(lane, rid, row_target):
            self._sql("UPDATE alert_log SET delivered_at = coalesce(delivered_at, ?) "
                      "WHERE seq = ?", now, seq)

    def confirmed(self, db: sqlite3.Connection, name: str,
                  rows: Iterable[tuple[int, int | None]], seq: int | None, now: float) -> int:
        """Target `name`'s platform holds these committed events (rid, seq), every one up to
        `seq` among them: they need no resend there. Returns how many it had not confirmed."""
        st = self.state(name)
        n = 0
        done = []
        for rid, row_seq in rows:
            if st.waiting(rid) or not st.passed(0, rid):
                n += 1
            if st.waiting(rid):
                del st.unconfirmed[rid]
                self._sql("DELETE FROM unconfirmed WHERE target = ? AND id = ?", name, rid)
            self._pass(st, 0, rid)
            done.append((rid, row_seq))
        self.advance(db, st, 0)
        with_receipts = [s for s in self.states.values() if s.target.receipts]
        if seq and with_receipts == [st]:  # the only platform that confirms: as before targets
            self._sql("UPDATE alert_log SET confirmed_at = ? WHERE seq <= ? AND confirmed_at "
                      "IS NULL", now, seq)
        for rid, row_seq in done:
            if row_seq is None:
                continue
            if all(s.passed(0, rid) and not s.waiting(rid) for s in with_receipts):
                self._sql("UPDATE alert_log SET confirmed_at = coalesce(confirmed_at, ?) "
                          "WHERE seq = ?", now, row_seq)
            if self.everyone_has(0, rid):
                self._sql("UPDATE alert_log SET delivered_at = coalesce(delivered_at, ?) "
                          "WHERE seq = ?", now, row_seq)
        return n

    def adopt(self, db: sqlite3.Connection, lane: int, rid: int, row_target: str | None,
              seq: int | None, event_id: str | None, created: float, sent: dict[str, float],
              confirmed: Iterable[str]) -> None:
        """A message sent from memory while the disk refused it is committed as row `rid`:
        the targets that PUBACKed it (`sent`: when) or confirmed it keep that."""
        confirmed = set(confirmed)
        for name, st in self.states.items():
            if name in confirmed:
                self._pass(st, lane, rid)
                self.advance(db, st, lane)
            elif name in sent:
                self.acked(db, name, lane, rid, row_target, seq, event_id, created, sent[name])

    def everyone_has(self, lane: int, rid: int, row_target: str | None = None) -> bool:
        return bool(self.states) and all(s.passed(lane, rid, row_target)
                                         for s in self.states.values())

    def finished(self, lane: int, rid: int, row_target: str | None) -> bool:
        """Every target has the row, and no platform's receipt is awaited for it."""
        return all(s.passed(lane, rid, row_target) and not s.waiting(rid)
                   for s in self.states.values()) and bool(self.states)

    # -- writing ------------------------------------------------------------------------------
    def write(self, db: sqlite3.Connection) -> tuple[int, list[int]]:
        """Inside the caller's transaction: the queued writes, then the rows every target has
        leave the outbox. Returns (payload bytes freed, the ids removed); `forget` them once
        the transaction committed."""
        for sql, params in self.pending:
            db.execute(sql, params)
        if not self.states:
            return 0, []
        freed, gone = 0, []
        for lane in LANES:
            low = min(s.done[lane] for s in self.states.values())
            size = db.execute("SELECT coalesce(sum(length(payload)), 0) FROM outbox WHERE "
                              "priority = ? AND id <= ? AND id NOT IN (SELECT id FROM "
                              "unconfirmed)", (lane, low)).fetchone()[0]
            if size:
                db.execute("DELETE FROM outbox WHERE priority = ? AND id <= ? AND id NOT IN "
                           "(SELECT id FROM unconfirmed)", (lane, low))
                freed += size
            # beyond the slowest cursor: rows every target has PUBACKed out of order
            lowest = next(s for s in self.states.values() if s.done[lane] == low)
            ids = sorted(lowest.ahead[lane])
            ids += [r[0] for r in db.execute(
                "SELECT id FROM outbox WHERE priority = ? AND id > ? AND target IS NOT NULL "
                "AND target != ?", (lane, low, lowest.name))]
            for rid, row_target, size in db.execute(
                    f"SELECT id, target, length(payload) FROM outbox WHERE id IN "
                    f"({','.join('?' * len(ids))})", ids).fetchall() if ids else []:
                if self.finished(lane, rid, row_target):
                    db.execute("DELETE FROM outbox WHERE id = ?", (rid,))
                    db.execute("DELETE FROM ahead WHERE id = ?", (rid,))
                    freed += size
                    gone.append(rid)
        return freed, gone

    def forget(self, gone: list[int]) -> None:
        """The written transaction committed: drop the queue and the removed rows."""
        self.pending.clear()
        for s in self.states.values():
            for lane in LANES:
                s.ahead[lane].difference_update(gone)
