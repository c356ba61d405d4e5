"""End-to-end receipts: an event leaves the outbox when the platform says it has it.

The broker's PUBACK says the broker has an event, not the platform: a broker restarted without
persistence, or one that drops a queue while the platform's subscriber is offline, loses what it
acknowledged. With `receipts = true` under `[uplink.mqtt]` a PUBACKed event stays in the outbox
as "sent, unconfirmed" (surviving restarts) and is sent again every `receipt_timeout` until a
receipt on `<prefix>/<site>/<gateway>/receipt` (`config/schema/receipt.schema.json`) covers it:
the highest `seq` up to which the platform holds every event, or a list of `event_id`s. The
platform dedupes resends by `event_id`. A receipt for a `seq` this gateway never assigned, or
whose `seq_event_id` is not the event of that seq here, belongs to another history (a retained
receipt after the state directory was replaced) and is ignored. Telemetry needs no receipt.

A mixin of `Outbox`: it uses the outbox's connection, hold and write path.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.outbox_hold import Hold

__all__ = ["Receipts"]

log = logging.getLogger("minewatch.outbox")


class Receipts:
    db: sqlite3.Connection
    hold: Hold
    _seq: int
    _bytes: int
    _acked: dict
    _snapshot: dict

    def __init__(self, enabled: bool, timeout: float):
        self.receipts = enabled
        self.receipt_timeout = timeout
        self.receipts_applied = 0
        self.receipts_ignored = 0
        self._resend_floor = 0.0
        self._receipt_seq = 0  # receipts the disk did not take yet
        self._receipt_ids: set[str] = set()

    def resend_due(self) -> float:
        """Unconfirmed events PUBACKed at or before this time are due to be sent again."""
        return max(time.time() - self.receipt_timeout, self._resend_floor)

    def resend_unconfirmed(self) -> None:
        """The broker had no session for us (it restarted without persistence): what it
        acknowledged may be gone with it, so every unconfirmed event is sent again now."""
        self._resend_floor = time.time()

    def covered(self, seq: int | None, event_id: str | None) -> bool:
        """Whether a receipt the disk did not take yet covers this committed event."""
        return seq is not None and (seq <= self._receipt_seq or event_id in self._receipt_ids)

    def pending_receipts(self) -> bool:
        return bool(self._receipt_seq or self._receipt_ids)

    def receipt(self, seq: int | None = None, event_ids: Iterable[str] = (),
                seq_event_id: str | None = None) -> int:
        """The platform holds every event up to `seq` and those in `event_ids`: they leave the
        outbox (a disk that refuses keeps the receipt in memory meanwhile). Returns how many
        events it confirmed now."""
        ids = set(event_ids)
        if seq is not None and not self._ours(seq, seq_event_id):
            seq = None
        if not seq and not ids:
            return 0
        now = time.time()
        n = 0
        for h in self.hold.events:
            if h.confirmed is None and ((seq and h.seq <= seq) or h.event["event_id"] in ids):
                h.confirmed = now
                n += 1
        confirmed = [0]

        def write() -> None:
            with self._tx() as db:
                freed, count = self._confirm(db, seq, ids, now)
            self._bytes -= freed
            confirmed[0] = count

        if not self._write(write):
            self._receipt_seq = max(self._receipt_seq, seq or 0)
            self._receipt_ids |= ids
        self.receipts_applied += 1
        return n + confirmed[0]

    def apply_receipts(self, db: sqlite3.Connection) -> int:
        """Write the receipts the disk refused before (inside the caller's transaction)."""
        if not self.pending_receipts():
            return 0
        freed, _ = self._confirm(db, self._receipt_seq or None, self._receipt_ids, time.time())
        self._receipt_seq = 0
        self._receipt_ids = set()
        return freed

    def _confirm(self, db: sqlite3.Connection, seq: int | None, ids: set[str], now: float
                 ) -> tuple[int, int]:
        freed = count = 0
        # priority 0 are the events; the (priority, id) index keeps these scans to them
        where = [("seq <= ?", seq)] if seq else []
        where += [("event_id = ?", eid) for eid in ids]
        for clause, value in where:
            size, n = db.execute(f"SELECT coalesce(sum(length(payload)), 0), count(*) FROM outbox "
                                 f"WHERE priority = 0 AND {clause}", (value,)).fetchone()
            db.execute(f"DELETE FROM outbox WHERE priority = 0 AND {clause}", (value,))
            db.execute(f"UPDATE alert_log SET confirmed_at = ? WHERE {clause} "
                       "AND confirmed_at IS NULL", (now, value))
            freed += size
            count += n
        return freed, count

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

    def unconfirmed(self) -> tuple[int, float | None]:
        """PUBACKed events no receipt covers yet: how many, and when the oldest was committed."""
        if not self.receipts:
            return 0, None
        n, oldest = self.db.execute("SELECT count(*), min(created) FROM outbox WHERE priority = 0 "
                                    "AND sent IS NOT NULL").fetchone()
        held = [h.created for h in self.hold.events
                if h.delivered is not None and h.confirmed is None]
        n += len(held) + sum(1 for _, keep, seq, _ in self._acked.values()
                             if keep and not self.covered(seq, None))
        oldest = min([x for x in (oldest, *held) if x is not None], default=None)
        self._snapshot.update(unconfirmed=n, oldest_unconfirmed=oldest)
        return n, oldest
