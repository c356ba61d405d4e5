"""Telemetry for the platform: 5-minute statistics of every point, real-time values of gas points,
and report-by-exception values of the other points (sent when a value moved by its `deadband`,
and at least every `max_silence` when it did not). Alerts never go through this path.

The practice of the underground-mine access specification
(docs/standards.md#nmsa-underground-mine-data-access, docs/requirements.md R7): real-time values
every 20 s and min/max/mean statistics every 5 min. Statistics are kept as running sums per point
(bounded state, vectorised per batch); windows are aligned to the clock so every gateway's windows
line up, and a sample counts in the window of its own time (a poll after a window's end closes
it first), so windows stay exact however fast a simulated clock runs. This module decides what
goes out and when, as `Report`s; the uplink's `encoding` (`gateway.encodings`: compact JSON by
default, zlib, Sparkplug B protobuf or the full JSON) turns each into its payload. Messages go
through the outbox at telemetry priority: they drain after alerts and are the first to go when the outbox is
full. Each closed window is also handed to `on_window` (the local history store keeps it for the
monthly report); `flush` hands over the open one at a stop or a reload. A point in a maintenance
window (`gateway/maintenance.py`) is flagged as such (by its read time); the values of a
`measure` command go out as kind `measured` with the command's id.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from detectors.base import Quality
from gateway.batch import Batch
from gateway.config.model import SiteConfig
from gateway.encodings import DEFAULT_DIGITS, Catalog, Report, encoder

__all__ = ["Telemetry", "Window", "GAS_QUANTITIES", "STATS_PERIOD", "REALTIME_PERIOD",
           "catalog"]

GAS_QUANTITIES = frozenset({"ch4", "co", "h2s", "no2", "o2", "combustible_gas", "nh3", "cl2"})
STATS_PERIOD = 300.0
REALTIME_PERIOD = 20.0


def catalog(cfg: SiteConfig) -> Catalog:
    """The site's points as telemetry names them."""
    pts = cfg.points
    return Catalog(cfg.site.code, cfg.gateway.id, tuple(p.name for p in pts),
                   tuple(p.device for p in pts), tuple(p.quantity for p in pts),
                   tuple(p.unit for p in pts))


class Window:
    """One closed statistics window over all points (arrays indexed by point): what the history
    store keeps. `count` good samples, `samples` polls of any quality, `sum` of the good values."""

    __slots__ = ("start", "end", "count", "samples", "min", "max", "sum", "quality")

    def __init__(self, start: float, end: float, count: np.ndarray, samples: np.ndarray,
                 vmin: np.ndarray, vmax: np.ndarray, vsum: np.ndarray, quality: np.ndarray):
        self.start, self.end = start, end
        self.count, self.samples, self.min, self.max = count, samples, vmin, vmax
        self.sum, self.quality = vsum, quality


class Telemetry:
    def __init__(self, cfg: SiteConfig, topic: str, stats_period: float = STATS_PERIOD,
                 realtime_period: float = REALTIME_PERIOD,
                 on_window: Callable[[Window], None] | None = None, encoding: str | None = None):
        self.cfg = cfg
        m = cfg.mqtt
        self.encoding = encoding or (m.encoding if m is not None else "compact")
        self.encode = encoder(self.encoding, catalog(cfg),
                              m.digits if m is not None else DEFAULT_DIGITS)
        self.on_window = on_window
        self._closed: list[tuple[str, bytes]] = []  # windows closed by a later sample
        self.topic = topic
        self.stats_period = stats_period
        self.realtime_period = realtime_period
        n = len(cfg.points)
        self.names = [p.name for p in cfg.points]
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
        self.maintenance = None  # gateway.maintenance.Maintenance, set by the daemon

    def _held(self, t: float | np.ndarray) -> np.ndarray | None:
        """Per point: in a maintenance window at `t`, one time or each point's own (None: no
        window at all). A value is flagged by when it was read, not when it is sent: a value
        read inside a window and reported after it closed was still taken under maintenance."""
        m = self.maintenance
        if m is None or not m.any or len(m.until) != len(self.names):
            return None
        return m.until > t

    def add(self, batch: Batch) -> None:
        if self.window_start is None:
            self.window_start = math.floor(batch.t / self.stats_period) * self.stats_period
        elif batch.t >= self.window_start + self.stats_period:
            # the sample belongs to a later window: close this one first (a late sample of
            # another bus, t before the open window, counts in the open one)
            end = self.window_start + self.stats_period
            self._closed.append(self._stats(self.window_start, end))
            self.window_start = math.floor(batch.t / self.stats_period) * self.stats_period
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

    def clock_stepped(self, jump: float) -> None:
        """The wall clock was stepped by `jump` s. The open statistics window closes with what it
        holds (after a step back it would stay open, and every sample count in it, until the
        clock came back to its end: a day of statistics in one window after a step back of a
        day); the next opens in the new time. The gas points' real-time cadence and each point's
        maximum silence go on from the new time."""
        if self.window_start is not None and self.samples.any():
            self._closed.append(self._stats(self.window_start,
                                            self.window_start + self.stats_period))
        self.window_start = None
        self.next_realtime = None
        self.reported_t += jump
        self.last_t += jump

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
        out, self._closed = self._closed, []
        if self.window_start is None:
            self.window_start = math.floor(now / self.stats_period) * self.stats_period
        if self.next_realtime is None:
            self.next_realtime = math.ceil(now / self.realtime_period) * self.realtime_period
        end = self.window_start + self.stats_period
        if now >= end:
            out.append(self._stats(self.window_start, end))
            self.window_start = math.floor(now / self.stats_period) * self.stats_period
        out.extend(self.changes(now))
        if self.gas.any() and self.next_realtime is not None and now >= self.next_realtime:
            report = self._latest("realtime", self.next_realtime, np.flatnonzero(self.gas))
            out.append((self.topic, self.encode(report)))
            self.next_realtime = math.floor(now / self.realtime_period) * self.realtime_period \
                + self.realtime_period
        return out

    def _latest(self, kind: str, ts: float, i: np.ndarray, command_id: str | None = None
                ) -> Report:
        held = self._held(self.last_t)
        return Report(kind, ts, i, self.last_quality[i].copy(), value=self.last[i].copy(),
                      observed=self.last_t[i].copy(),
                      maintenance=held[i] if held is not None else None, command_id=command_id)

    def measured(self, indices: list[int], now: float, command_id: str) -> tuple[str, bytes]:
        """The latest values of these points, as a `measure` command read them."""
        report = self._latest("measured", now, np.asarray(indices, np.int64), command_id)
        return self.topic, self.encode(report)

    def flush(self, now: float) -> None:
        """Hand the open window, as far as it got, to `on_window` (at a stop or a reload; the
        history store merges it with the rest of that window from the next run). Nothing is
        published: the platform gets whole windows only."""
        if self.window_start is None or self.on_window is None or not self.samples.any():
            return
        self.on_window(self._window(self.window_start, min(now, self.window_start
                                                          + self.stats_period)))

    def _window(self, start: float, end: float) -> Window:
        return Window(start, end, self.count.copy(), self.samples.copy(), self.min.copy(),
                      self.max.copy(), self.sum.copy(), self.last_quality.copy())

    def _stats(self, start: float, end: float) -> tuple[str, bytes]:
        if self.on_window is not None and self.samples.any():
            self.on_window(self._window(start, end))
        n = self.count.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sum / n
        held = self._held(end)
        report = Report("stats", end, np.arange(len(n)), self.last_quality.copy(),
                        window_start=start, count=n, samples=self.samples.copy(),
                        vmin=self.min.copy(), vmax=self.max.copy(), mean=mean, maintenance=held)
        self.min.fill(np.inf)
        self.max.fill(-np.inf)
        self.sum.fill(0.0)
        self.count.fill(0)
        self.samples.fill(0)
        return self.topic, self.encode(report)
