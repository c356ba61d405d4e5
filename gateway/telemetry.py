"""Telemetry for the platform: 5-minute statistics of every point, real-time values of gas points,
and report-by-exception values of the other points (sent when a value moved by its `deadband`,
and at least every `max_silence` when it did not). Alerts never go through this path.

The practice of the underground-mine access specification
(docs/standards.md#nmsa-underground-mine-data-access, docs/requirements.md R7): real-time values
every 20 s and min/max/mean statistics every 5 min. Statistics are kept as running sums per point
(bounded state, vectorised per batch); windows are aligned to the clock so every gateway's windows
line up. This module decides what goes out and when, as `Report`s; the uplink's `encoding`
(`gateway.encodings`: compact JSON by default, zlib, Sparkplug B protobuf or the full JSON) turns
each into its payload. Messages go through the outbox at telemetry priority: they drain after
alerts and are the first to go when the outbox is full.
"""

from __future__ import annotations

import math

import numpy as np

from detectors.base import Quality
from gateway.batch import Batch
from gateway.config.model import SiteConfig
from gateway.encodings import DEFAULT_DIGITS, Catalog, Report, encoder

__all__ = ["Telemetry", "GAS_QUANTITIES", "STATS_PERIOD", "REALTIME_PERIOD", "catalog"]

GAS_QUANTITIES = frozenset({"ch4", "co", "h2s", "no2", "o2", "combustible_gas", "nh3", "cl2"})
STATS_PERIOD = 300.0
REALTIME_PERIOD = 20.0


def catalog(cfg: SiteConfig) -> Catalog:
    """The site's points as telemetry names them."""
    pts = cfg.points
    return Catalog(cfg.site.code, cfg.gateway.id, tuple(p.name for p in pts),
                   tuple(p.device for p in pts), tuple(p.quantity for p in pts),
                   tuple(p.unit for p in pts))


class Telemetry:
    def __init__(self, cfg: SiteConfig, topic: str, stats_period: float = STATS_PERIOD,
                 realtime_period: float = REALTIME_PERIOD, encoding: str | None = None):
        self.cfg = cfg
        self.topic = topic
        self.stats_period = stats_period
        self.realtime_period = realtime_period
        m = cfg.mqtt
        self.encoding = encoding or (m.encoding if m is not None else "compact")
        self.encode = encoder(self.encoding, catalog(cfg),
                              m.digits if m is not None else DEFAULT_DIGITS)
        n = len(cfg.points)
        self.gas = np.array([p.quantity in GAS_QUANTITIES for p in cfg.points], dtype=bool)
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)
        self.sum = np.zeros(n)
        self.count = np.zeros(n, np.int64)
        self.samples = np.zeros(n, np.int64)
        self.last = np.full(n, np.nan)
        self.last_t = np.full(n, np.nan)
        self.last_quality = np.full(n, Quality.COMM_FAIL, np.uint8)
        self.window_start: float | None = None
        self.next_realtime: float | None = None
        self.deadband = np.array([p.deadband for p in cfg.points])
        self.max_silence = np.array([p.max_silence for p in cfg.points])
        self.reported = np.full(n, np.nan)
        self.reported_t = np.full(n, -np.inf)
        self.reported_quality = np.full(n, 255, np.uint8)  # 255: never reported
        self.pending = np.zeros(n, dtype=bool)

    def add(self, batch: Batch) -> None:
        idx, v = batch.idx, batch.values
        good = batch.valid
        gi, gv = idx[good], v[good]
        self.min[gi] = np.minimum(self.min[gi], gv)
        self.max[gi] = np.maximum(self.max[gi], gv)
        self.sum[gi] += gv
        self.count[gi] += 1
        self.samples[idx] += 1
        self.last[idx] = v
        self.last_t[idx] = batch.t
        self.last_quality[idx] = batch.quality
        # report by exception (gas points have their fixed 20 s cadence instead)
        with np.errstate(invalid="ignore"):
            moved = ~(np.abs(v - self.reported[idx]) < self.deadband[idx])  # NaN counts as moved
        silent = batch.t - self.reported_t[idx] >= self.max_silence[idx]
        changed_quality = batch.quality != self.reported_quality[idx]
        due = (moved | silent | changed_quality) & ~self.gas[idx]
        self.pending[idx[due]] = True

    def changes(self, now: float) -> list[tuple[str, bytes]]:
        """Report-by-exception values gathered since the last call (one message)."""
        if not self.pending.any():
            return []
        i = np.flatnonzero(self.pending)
        self.reported[i] = self.last[i]
        self.reported_t[i] = self.last_t[i]
        self.reported_quality[i] = self.last_quality[i]
        self.pending[:] = False
        return [(self.topic, self.encode(self._latest("values", now, i)))]

    def due(self, now: float) -> list[tuple[str, bytes]]:
        """Messages whose time has come (a closed stats window, a real-time tick)."""
        out: list[tuple[str, bytes]] = []
        if self.window_start is None:
            self.window_start = math.floor(now / self.stats_period) * self.stats_period
            self.next_realtime = math.ceil(now / self.realtime_period) * self.realtime_period
        end = self.window_start + self.stats_period
        if now >= end:
            out.append((self.topic, self.encode(self._stats(self.window_start, end))))
            self.window_start = math.floor(now / self.stats_period) * self.stats_period
        out.extend(self.changes(now))
        if self.gas.any() and self.next_realtime is not None and now >= self.next_realtime:
            report = self._latest("realtime", self.next_realtime, np.flatnonzero(self.gas))
            out.append((self.topic, self.encode(report)))
            self.next_realtime = math.floor(now / self.realtime_period) * self.realtime_period \
                + self.realtime_period
        return out

    def _latest(self, kind: str, ts: float, i: np.ndarray) -> Report:
        return Report(kind, ts, i, self.last_quality[i].copy(), value=self.last[i].copy(),
                      observed=self.last_t[i].copy())

    def _stats(self, start: float, end: float) -> Report:
        n = self.count.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sum / n
        report = Report("stats", end, np.arange(len(n)), self.last_quality.copy(),
                        window_start=start, count=n, samples=self.samples.copy(),
                        vmin=self.min.copy(), vmax=self.max.copy(), mean=mean)
        self.min.fill(np.inf)
        self.max.fill(-np.inf)
        self.sum.fill(0.0)
        self.count.fill(0)
        self.samples.fill(0)
        return report
