"""The one clock of the gateway: timestamps and waits go through it (docs/contracts.md#clock).

`WallClock` is production: wall time for timestamps, the monotonic clock for waiting, and a jump of
the wall clock is logged (never used to reorder anything). `SimClock` is simulation: simulated time
runs `scale` times faster than real time from `epoch`, anchored at a real (wall) instant that the
simulator and the gateway share, so both see the same simulated time in separate processes.
Modbus and MQTT timeouts are real seconds and never go through a clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "WallClock", "SimClock", "parse_epoch", "MIN_REAL_PERIOD"]

log = logging.getLogger("minewatch.clock")

# docs/contracts.md#clock: the time scale is capped so the shortest poll period stays >= 100 ms
# of real time.
MIN_REAL_PERIOD = 0.1


class Clock(Protocol):
    scale: float
    jumps: int  # wall-clock steps seen so far: a schedule built on older readings is stale
    stepped: float  # their sum (s): what was wall time t before them is t + stepped now

    def now(self) -> float:
        """Epoch seconds (UTC) in this clock's time."""

    async def sleep_until(self, t: float) -> None:
        """Wait until this clock reads `t` (returns at once if it already does)."""


class WallClock:
    scale = 1.0

    def __init__(self, jump_threshold: float = 2.0):
        self._offset = self._wall() - time.monotonic()
        self._jump_threshold = jump_threshold
        self.jumps = 0
        self.stepped = 0.0

    @staticmethod
    def _wall() -> float:
        return time.time()

    def now(self) -> float:
        t = self._wall()
        offset = t - time.monotonic()
        jump = offset - self._offset
        if abs(jump) > self._jump_threshold:
            # old: what the wall clock would read now without the step, so the log says from
            # which time to which it moved (an NTP step after boot, an operator's mistake)
            log.warning("wall clock jumped by %+.3f s, from %s to %s; timestamps follow the new "
                        "time, waits and detector windows do not", jump, _utc(t - jump),
                        _utc(t), extra={"event": "clock_jump", "jump_s": jump,
                                        "old": _utc(t - jump), "new": _utc(t)})
            self._offset = offset
            self.jumps += 1
            self.stepped += jump
        return t

    async def sleep_until(self, t: float) -> None:
        # wait on the monotonic clock so a wall-clock step does not stretch or skip the wait
        deadline = time.monotonic() + (t - self.now())
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(remaining, 1.0))


class SimClock:
    """Simulated time = epoch + (wall time - anchor) * scale."""

    jumps = 0  # simulated time never steps
    stepped = 0.0

    def __init__(self, epoch: float, scale: float, anchor: float | None = None):
        if scale <= 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self.epoch = float(epoch)
        self.scale = float(scale)
        self.anchor = time.time() if anchor is None else float(anchor)

    def now(self) -> float:
        return self.epoch + (time.time() - self.anchor) * self.scale

    async def sleep_until(self, t: float) -> None:
        while (remaining := (t - self.now()) / self.scale) > 0:
            await asyncio.sleep(min(remaining, 1.0))


def _utc(t: float) -> str:
    """ISO 8601 UTC with milliseconds, for the log."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_epoch(text: str) -> float:
    """Epoch seconds from a number or an ISO 8601 time (naive means UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
