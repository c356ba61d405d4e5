"""End-to-end receipts: an event leaves the outbox when the platform says it has it.

The broker's PUBACK says the broker has an event, not the platform: a broker restarted without
persistence, or one that drops a queue while the platform's subscriber is offline, loses what it
acknowledged. With `receipts = true` under an `[uplink.mqtt]` target a PUBACKed event stays in
the outbox as "sent, unconfirmed" for that target (surviving restarts) and is sent again every
`receipt_timeout` until a receipt on that target's `<prefix>/<site>/<gateway>/receipt`
(`config/schema/receipt.schema.json`) covers it:
the highest `seq` up to which the platform holds every event, or a list of `event_id`s. The
platform dedupes resends by `event_id`. A receipt for a `seq` this gateway never assigned, or
whose `seq_event_id` is not the event of that seq here, belongs to another history (a retained
receipt after the state directory was replaced) and is ignored. Telemetry needs no receipt.

Each target's platform confirms for itself (`outbox_cursors.py` keeps what each awaits).

A mixin of `Outbox`: it uses the outbox's connection, hold and write path.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.outbox_cursors import Deliveries
    from gateway.outbox_hold import Hold

__all__ = ["Receipts"]

log = logging.getLogger("minewatch.outbox")


class Receipts:
    db: sqlite3.Connection
    hold: Hold
    _seq: int
    _snapshot: dict
    deliveries: Deliveries
    _write_deliveries: Callable[[], bool]

    def __init__(self, enabled: bool):
        self.receipts = enabled  # some target waits for its platform's receipts
        self.receipts_applied = 0
        self.receipts_ignored = 0

    def resend_due(self, target: str | None = None) -> float:
        """Unconfirmed events PUBACKed at or before this time are due to be sent again."""
        return self.deliveries.state(target).due()

    def resend_unconfirmed(self, target: str | None = None) -> None:
        """The broker had no session for us (it restarted without persistence): what it
        acknowledged may be gone with it, so every event unconfirmed there is sent again now."""
        self.deliveries.state(target).resend_floor = time.time()

    def clock_stepped(self, jump: float) -> None:
        """The wall clock was stepped by `jump` s: each unconfirmed event is sent again
        `receipt_timeout` after its PUBACK as measured before the step (a step back of a day
        would otherwise hold a lost receipt's re-send for a day, a step forward send every
        unconfirmed event again at once). Only the running gateway's schedule moves; the
        file keeps the PUBACK's wall time."""
        self.deliveries.clock_stepped(jump)
        for h in self.hold.events:
            h.sent = {name: t + jump for name, t in h.sent.items()}

    def receipt(self, seq: int | None = None, event_ids: Iterable[str] = (),
                seq_event_id: str | None = None, target: str | None = None,
                stored: bool = False) -> int:
        """`target`'s platform (default: the first target's) holds every event up to `seq` and
        those in `event_ids`: they need no resend there, and leave the outbox once every target
        has them (a disk that refuses keeps this in memory meanwhile). Returns how many events
        it confirmed now.

        `stored`: the broker kept the receipt (retained) and handed it over at a subscribe, so
        it may be of any age, even of an older history that reached this seq (a replaced state
        directory, a receipt without `seq_event_id`). It confirms only events this target's
        broker has acknowledged; what was never sent there goes, and a live receipt covers it."""
        ids = set(event_ids)
        if seq is not None and not self._ours(seq, seq_event_id):
            seq = None
        if not seq and not ids:
            return 0
        d = self.deliveries
        name = d.state(target).name
        with_receipts = [t.name for t in d.targets if t.receipts]
        now = time.time()
        n = 0
        for h in self.hold.events:
            if stored and name not in h.sent:
                continue
            if name not in h.confirmed_by and ((seq and h.seq <= seq)
                                               or h.event["event_id"] in ids):
                h.confirmed_by[name] = now
                n += 1
                if all(t in h.confirmed_by for t in with_receipts):
                    h.confirmed = now
        where = ["seq <= ?"] if seq else []
        where += ["event_id IN (" + ",".join("?" * len(ids)) + ")"] if ids else []
        rows = self.db.execute(f"SELECT id, seq FROM outbox WHERE priority = 0 AND seq IS NOT "
                               f"NULL AND ({' OR '.join(where)})",
                               ([seq] if seq else []) + sorted(ids)).fetchall()
        if stored:
            st = d.state(name)
            rows = [r for r in rows if st.passed(0, r[0])]
        n += d.confirmed(self.db, name, rows, None if stored else seq, now)
        self._write_deliveries()
        self.receipts_applied += 1
        return n

    def _ours(self, seq: int, seq_event_id: str | None) -> bool:
        if seq > self._seq:
            why = f"the last seq assigned here is {self._seq}"
        elif seq_event_id is None:
            return True
        else:
            held = self.hold.event(seq)
            if held is not None:
                here = held.event["event_id"]
            else:
                row = self.db.execute("SELECT event_id FROM alert_log WHERE seq = ?",
                                      (seq,)).fetchone()
                here = row[0] if row else None
            if here is None or here == seq_event_id:
                return True
            why = f"seq {seq} is event {here} here"
        self.receipts_ignored += 1
        if self.receipts_ignored in (1, 10) or self.receipts_ignored % 100 == 0:
            log.warning("receipt for seq %d (event %s) ignored: %s; another gateway's or an "
                        "older history's receipt? (%d ignored so far)", seq, seq_event_id, why,
                        self.receipts_ignored, extra={"event": "receipt_ignored", "seq": seq})
        return False

    def unconfirmed(self, target: str | None = None) -> tuple[int, float | None]:
        """PUBACKed events a platform's receipt does not cover yet: how many, and when the
        oldest was committed; for one target, or any target with receipts."""
        if not self.receipts:
            return 0, None
        d = self.deliveries
        states = [d.state(target)] if target is not None else \
            [s for s in d.states.values() if s.target.receipts]
        created = {rid: u.created for s in states for rid, u in s.unconfirmed.items()}
        held = [h.created for h in self.hold.events if any(h.waiting(s.name) for s in states)]
        oldest = min([*created.values(), *held], default=None)
        n = len(created) + len(held)
        if target is None:
            self._snapshot.update(unconfirmed=n, oldest_unconfirmed=oldest)
        return n, oldest
