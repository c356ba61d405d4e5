"""The InfluxDB sink: every batch, event and heartbeat as line protocol, spooled, then written.

Writes go through influxdb-client's synchronous write API, one HTTP request per spool slice, in a
worker thread so the event loop never waits on the network. The client's own retry and batching
are off on purpose: a failed write leaves the lines in the spool, which is retried with
exponential backoff and jitter until the database takes them, however long it is away. A slice
the database refuses as malformed (HTTP 400) can never succeed, so it is dropped and counted
rather than blocking the spool forever; authorisation and bucket errors stay and are retried,
because a fixed config (SIGHUP) or a created bucket makes them succeed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

import numpy as np

from gateway.batch import Batch
from gateway.config.model import InfluxStorage, SiteConfig
from gateway.state_dir import StorageGuard
from gateway.storage.line_protocol import alert_line, health_lines, tag_set
from gateway.storage.spool import PRIORITY_READING, PRIORITY_RECORD, Spool
from gateway.text_files import read_secret

__all__ = ["InfluxSink", "SinkStats"]

log = logging.getLogger("minewatch.sink")


@dataclass
class SinkStats:
    written_lines: int = 0
    rejected_lines: int = 0  # refused by the database as malformed: dropped
    write_errors: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    last_write: float | None = None  # epoch seconds of the last accepted write


class _Refused(Exception):
    """The database answered, and will never accept this body."""


class _HttpError(Exception):
    """The database answered with an error that a later attempt may not get (5xx, 401, 404)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class InfluxSink:
    """Spools lines in the pipeline thread; `run()` drains the spool to the database."""

    def __init__(self, cfg: SiteConfig, settings: InfluxStorage,
                 guard: StorageGuard | None = None):
        self.settings = settings
        self.site = cfg.site.code
        self.gateway = cfg.gateway.id
        self.spool = Spool(settings.spool_path, settings.spool_max_bytes, guard)
        self.stats = SinkStats()
        self._wake = asyncio.Event()
        self._client = None
        self._write_api = None
        self._reported: str | None = None
        self.set_points(cfg)

    def set_points(self, cfg: SiteConfig) -> None:
        """Per point index, the `reading,<tags>` prefix (rebuilt on reload: indices change)."""
        self._prefixes = [
            "reading" + tag_set(site=self.site, gateway=self.gateway,
                                device=p.device if p.formula is None else "derived",
                                point=p.name, quantity=p.quantity)
            for p in cfg.points]
        # raw measurands only where a conversion makes the value differ from the reading
        self._raw_prefixes = [
            None if p.formula is not None or p.conversion.kind == "none" else
            "raw" + tag_set(site=self.site, gateway=self.gateway, device=p.device,
                            point=p.name, quantity=p.quantity)
            for p in cfg.points]

    # --- the pipeline side: cheap, never blocks on the network ---------------------------------
    def add_batch(self, batch: Batch) -> None:
        from gateway.storage.line_protocol import raw_lines, reading_lines

        self.spool.append(reading_lines(self._prefixes, batch.idx, batch.values, batch.quality,
                                        batch.t), PRIORITY_READING)
        if batch.raw is not None:
            aux = batch.raw_aux if batch.raw_aux is not None else np.full(batch.raw.size, np.nan)
            lines = raw_lines(self._raw_prefixes, batch.idx, batch.raw, aux, batch.t)
            if lines:
                self.spool.append(lines, PRIORITY_READING)
        self._wake.set()

    def add_manual(self, point: int, t: float, value: float) -> None:
        """A manual reading: a `reading` line of quality 6 (manual), tagged `source=manual`, so it
        is a series of its own beside the automatic one and never lands on its timestamps."""
        from detectors.base import Quality
        from gateway.storage.line_protocol import reading_lines

        prefix = [self._prefixes[point] + ",source=manual"]
        self.spool.append(reading_lines(prefix, np.zeros(1, np.int64), np.array([value]),
                                        np.array([Quality.MANUAL], np.uint8), t),
                          PRIORITY_RECORD)
        self._wake.set()

    def add_events(self, events: list[dict]) -> None:
        lines = [alert_line(self.site, self.gateway, ev) for ev in events
                 if ev.get("observed_at") is not None]
        self.spool.append(lines, PRIORITY_RECORD)
        self._wake.set()

    def add_health(self, health: dict) -> None:
        self.spool.append(health_lines(self.site, self.gateway,
                                       {**health, "sink_backlog": self.backlog()}),
                          PRIORITY_RECORD)
        self._wake.set()

    def backlog(self) -> int:
        return self.spool.backlog()

    # --- the writer side ------------------------------------------------------------------------
    def _connect(self) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        s = self.settings
        # checked when the config loaded; read again here, as the file may have been rotated
        token = read_secret(s.token_file) if s.token_file else ""
        self._client = InfluxDBClient(url=s.url, token=token, org=s.org,
                                      timeout=int(s.timeout * 1000))
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def _write(self, body: bytes) -> None:
        """One blocking HTTP write (runs in a worker thread)."""
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        if self._write_api is None:
            self._connect()
        try:
            self._write_api.write(bucket=self.settings.bucket, org=self.settings.org,
                                  record=body, write_precision=WritePrecision.MS)
        except ApiException as exc:
            reason = (exc.body or exc.reason or "").strip()[:200]
            if exc.status == 400:
                raise _Refused(f"HTTP 400 {reason}") from None
            raise _HttpError(exc.status, f"HTTP {exc.status} {reason}") from None

    def _failed(self, kind: str, message: str) -> None:
        self.stats.write_errors[kind] = self.stats.write_errors.get(kind, 0) + 1
        self.stats.last_error = message
        if message != self._reported:  # once per new reason, not once per retry
            self._reported = message
            log.warning("database %s not written: %s; %d lines wait in the spool",
                        self.settings.url, message, self.backlog(),
                        extra={"event": "sink_failed", "reason": message})

    async def write_once(self) -> bool:
        """Write the oldest spool slice. True when written (or dropped as refused)."""
        chunk = self.spool.peek(self.settings.batch_lines)
        if chunk is None:
            return True
        try:
            await asyncio.to_thread(self._write, chunk.body)
        except _Refused as exc:
            self.spool.remove(chunk)
            self.stats.rejected_lines += chunk.lines
            self._failed("refused", str(exc))
            log.error("database refused %d lines as malformed; dropped: %s", chunk.lines, exc,
                      extra={"event": "sink_refused", "lines": chunk.lines})
            return True
        except Exception as exc:  # noqa: BLE001 - any failure to deliver is retried
            self._failed(*_reason(exc))
            return False
        self.spool.remove(chunk)
        self.stats.written_lines += chunk.lines
        self.stats.last_write = time.time()
        if self._reported is not None:
            log.info("database %s reachable again; %d lines wait in the spool",
                     self.settings.url, self.backlog(), extra={"event": "sink_recovered"})
            self._reported = None
        return True

    async def run(self) -> None:
        """Drain the spool forever: at most one write per flush interval while it keeps up,
        exponential backoff with jitter while the database is away."""
        delay = 0.0
        while True:
            if self.backlog() == 0:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(max(delay, self.settings.flush_interval))
            ok = True
            while ok and self.backlog():
                ok = await self.write_once()
            if ok:
                delay = 0.0
            else:
                delay = min(self.settings.retry_max,
                            max(1.0, delay * 2)) * random.uniform(0.8, 1.2)

    async def flush(self, timeout: float) -> bool:
        """Write what the spool holds within `timeout` seconds (on shutdown). True when empty."""
        deadline = time.monotonic() + timeout
        while self.backlog() and time.monotonic() < deadline:
            if not await self.write_once():
                await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return self.backlog() == 0

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self.spool.close()


def _reason(exc: BaseException) -> tuple[str, str]:
    """(kind for the error counter, message for people) of a failed write."""
    if isinstance(exc, _HttpError):
        return f"http_{exc.status}", str(exc)
    text = str(exc)
    if "Connection refused" in text:
        return "unreachable", "connection refused"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "unreachable", "host name not resolved"
    if "timed out" in text.lower():
        return "timeout", "timed out"
    return type(exc).__name__, (text.splitlines()[0][:200] if text else type(exc).__name__)
