"""The month's summary for the platform: after each month ends, the daemon publishes the month's
report document (`figures.py`; `config/schema/report.schema.json`) on
`<prefix>/<site>/<gateway>/report`.

`GRACE_S` after the local month's end (so its last window is closed and stored) the figures are
computed in a worker thread with their own read-only connections (a large site's month is a lot
of rows; the poll loop must not wait for them), then committed to the outbox at event priority,
where they survive a broker outage or a restart and are never dropped. The month is then marked
in the history store, so it is published once. A month the gateway was down at the end of is
published at its next start; months without a single run of the gateway have nothing to report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from typing import Any

from gateway.alerts.encoder import topic
from gateway.report.period import Month, month_of, previous_month

__all__ = ["MonthlyReports", "GRACE_S", "CHECK_EVERY_S"]

log = logging.getLogger("minewatch.report")

GRACE_S = 600.0
CHECK_EVERY_S = 60.0  # of clock time: whether a month waits for its report


class MonthlyReports:
    def __init__(self, gw: Any):
        self.gw = gw
        self._task: asyncio.Task | None = None
        self._month: Month | None = None
        self._ready: bytes | None = None  # computed, not yet taken by the outbox
        self._checked = float("-inf")
        self.published: list[str] = []

    def due(self, now: float) -> Month | None:
        """The oldest finished month with a run of the gateway and no published report."""
        gw = self.gw
        tz = gw.engine.tz
        if now < month_of(now, tz).start + GRACE_S:
            return None
        last = previous_month(now, tz)
        db = gw.history.store.db  # the loop's own connection: a few rows, never blocked
        try:
            done = {r[0] for r in db.execute("SELECT month FROM reports")}
            runs = db.execute("SELECT started, coalesce(stopped, last_seen) FROM runs WHERE "
                              "started<? AND coalesce(stopped, last_seen)>?",
                              (last.end, gw.history.oldest_kept(now))).fetchall()
        except sqlite3.Error as exc:
            log.warning("months to report not read: %s", exc, extra={"event": "report_failed"})
            return None
        done |= set(self.published)  # a mark still waiting for the disk counts too
        months = []
        for a, b in runs:  # every month a run of the gateway overlaps
            m = month_of(max(a, gw.history.oldest_kept(now)), tz)
            while m.start < min(b, last.end):
                months.append(m)
                m = month_of(m.end, tz)
        pending = sorted({m.label: m for m in months if m.label not in done}.values(),
                         key=lambda m: m.start)
        return pending[0] if pending else None

    def tick(self, now: float) -> None:
        """Once a second from the daemon's loop."""
        if self._ready is not None:
            self._commit()
            return
        if self._task is not None:
            if not self._task.done():
                return
            task, self._task = self._task, None
            if task.cancelled():
                return
            if task.exception() is not None:
                log.error("monthly report %s not computed: %s", self._month.label,
                          task.exception(), extra={"event": "report_failed"})
                return
            self._ready = task.result()
            self._commit()
            return
        if now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        month = self.due(now)
        if month is None:
            return
        from gateway.report.figures import monthly_figures

        self._month = month
        cfg = self.gw.cfg
        self._task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._compute, monthly_figures, cfg, month, now))

    @staticmethod
    def _compute(figures, cfg, month: Month, now: float) -> bytes:
        doc = figures(cfg, month, now=now)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def _commit(self) -> None:
        gw = self.gw
        assert self._month is not None and self._ready is not None
        label = self._month.label
        to = topic(gw.prefix, gw.cfg.site.code, gw.cfg.gateway.id, "report")
        if not gw.outbox.add_record(to, self._ready):
            return  # the disk refused: offered again next second
        size = len(self._ready)
        self._ready = None
        at = gw.clock.now()
        gw.history.store.later(lambda db: db.execute(
            "INSERT OR REPLACE INTO reports (month, committed_at) VALUES (?, ?)", (label, at)))
        self.published.append(label)
        log.info("monthly report %s committed to the outbox (%d bytes)", label, size,
                 extra={"event": "report_committed", "month": label})
        if gw.publisher is not None:
            gw.publisher.notify()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
