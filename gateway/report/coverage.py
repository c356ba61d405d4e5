"""Online time: how long the gateway ran in a month, and how long each device was online.

A device is online from a poll it answered until its next poll that failed (no answer, or an
exception reply: the same rule as the heartbeat's `online`), and offline from a failed poll until
its next answered one; at each start of the gateway it is offline until its first poll, and when
the gateway is not running it is not online (the platform gets nothing from it either). The
monthly online rate is its online time over the month's length (GB 51108-2015 and the province's
access rules count it; the geohazard access spec's device online rate, docs/standards.md).

>>> online_seconds([(0.0, 100.0)], [(10.0, True), (40.0, False), (50.0, True)], 0.0, 100.0)
80.0
"""

from __future__ import annotations

__all__ = ["online_seconds", "running_seconds", "offline_episodes"]


def _clip(a: float, b: float, start: float, end: float) -> float:
    return max(0.0, min(b, end) - max(a, start))


def running_seconds(runs: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(_clip(a, b, start, end) for a, b in runs)


def _intervals(runs: list[tuple[float, float]], states: list[tuple[float, bool]]
               ) -> list[tuple[float, float, bool]]:
    """(from, to, online) pieces of each run."""
    out = []
    for a, b in runs:
        inside = [(t, on) for t, on in states if a <= t < b]
        t0, on = a, False
        for t, state in inside:
            if state != on:
                if t > t0:
                    out.append((t0, t, on))
                t0, on = t, state
        if b > t0:
            out.append((t0, b, on))
    return out


def online_seconds(runs: list[tuple[float, float]], states: list[tuple[float, bool]],
                   start: float, end: float) -> float:
    return sum(_clip(a, b, start, end) for a, b, on in _intervals(runs, states) if on)


def offline_episodes(runs: list[tuple[float, float]], states: list[tuple[float, bool]],
                     start: float, end: float) -> int:
    """Times the device went offline while the gateway ran (a failed poll after an answered
    one) within [start, end)."""
    pieces = _intervals(runs, states)
    return sum(1 for k, (a, _, on) in enumerate(pieces)
               if not on and k and pieces[k - 1][2] and pieces[k - 1][1] == a
               and start <= a < end)
