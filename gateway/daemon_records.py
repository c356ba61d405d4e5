"""The daemon's record keeping, wired into its loop: the history store (`gateway/history/`),
manual readings (`gateway/manual/`) and the month's report to the platform
(`gateway/report/publish.py`).

A mixin of `gateway.daemon.Gateway`, like its health: it reads the gateway's config, clock,
storage watch, outbox, alert engine, telemetry and pollers. With the store off (`[history]
enabled = false`) or unopenable, the gateway runs as before: no history, no monthly report, and
manual readings are refused with the reason.

`add_reading` is the entry point of the platform's `reading` command
(`gateway/commands/handlers/reading.py`), called in the daemon's loop: the result, or a
`ReadingError` naming the argument at fault.
"""

from __future__ import annotations

from typing import Any

from gateway.batch import Batch
from gateway.config.model import SiteConfig
from gateway.history.recorder import HistoryRecorder
from gateway.manual.intake import ManualIntake, ReadingError

__all__ = ["GatewayRecords", "ReadingError"]


class GatewayRecords:
    cfg: SiteConfig
    clock: Any
    storage: Any
    pollers: dict
    history: HistoryRecorder | None
    manual: ManualIntake | None
    reports: Any

    def _open_records(self, cfg: SiteConfig) -> None:
        self.history = HistoryRecorder.open(cfg, self.storage)
        self.manual = ManualIntake(self) if self.history is not None else None
        self.reports = None
        if self.history is not None:
            from gateway.report.publish import MonthlyReports

            self.reports = MonthlyReports(self)

    def _records_window(self, window) -> None:
        if self.history is not None:
            self.history.on_window(window)

    def _records_poll(self, batch: Batch) -> None:
        poller = self.pollers.get(batch.device)
        if self.history is not None and poller is not None:
            self.history.on_poll(batch.device, batch.t, poller.stats.consecutive_failures == 0)

    def _records_tick(self, now: float) -> None:
        if self.history is None:
            return
        self.history.tick(now)
        self.manual.tick()
        self.reports.tick(now)

    async def _records_stop(self, now: float) -> None:
        if self.history is None:
            return
        await self.reports.stop()
        self.telemetry.flush(now)
        self.history.stop(now)

    def add_reading(self, point: str, value: object, at: float | None = None, by: str = "",
                    note: str | None = None, source: str = "mqtt") -> dict:
        """Take one manual reading now (the platform's `reading` command): validated, graded,
        compared, published and stored; returns its result (see README, "Manual readings").
        Raises ReadingError, with the argument at fault and the reason in zh and en."""
        if self.manual is None:
            raise ReadingError("history", "网关未启用历史库，无法记录人工读数",
                               "the gateway runs without its history store: no manual readings")
        return self.manual.add(point, value, at, by, note, source)
