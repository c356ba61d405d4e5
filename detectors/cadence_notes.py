"""What each detector can judge at a point's sample period, said in words (never silently).

Every window, warm-up and learning period of the detectors is "at least so many seconds and at
least so many sample periods" (`detectors.cadence`), so a detector built for 10-minute data still
works on daily solutions, but it then needs weeks where it needed hours, and a few cannot judge
at all (a flat rain gauge proves nothing). `notes()` turns that into sentences for
`minewatch config validate`, the daemon's start-up log and `minewatch replay`, each naming the
detector and, through the caller, the point.

>>> [n.text for n in notes("tangent_angle", "gnss_disp", 86400.0)][:2]
['velocity over 8 d (8 buckets of 1 d)', 'learns v_ref over 30 d, grades from 60 d on']
>>> n = notes("stuck", "rainfall_24h", 600.0)[0]
>>> n.judges, n.text
(False, 'a flat line is normal for this quantity: no stuck verdict (out-of-range values are still faults)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Note", "notes", "duration_text"]

_LONG = 90 * 86400.0  # a detector that needs longer than this to start cannot judge in a season


@dataclass(frozen=True)
class Note:
    detector: str
    judges: bool  # False: it cannot judge this point at this cadence (or at all)
    text: str


def duration_text(seconds: float) -> str:
    """'45 s', '10 min', '6 h', '8 d' (the largest unit that divides evenly enough)."""
    if not math.isfinite(seconds):
        return "never"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f} {unit}" if abs(value - round(value)) < 0.05 else \
                f"{value:.1f} {unit}"
    return f"{seconds:.0f} s"


def _at_least(seconds: float, samples: float, period: float) -> float:
    return max(seconds, samples * period)


def _param(params: dict[str, Any] | None, name: str, default: float) -> float:
    if params and name in params:
        return float(params[name])
    return default


def notes(detector: str, quantity: str, period: float,
          params: dict[str, Any] | None = None) -> list[Note]:
    """What `detector` does on a `quantity` point sampled every `period` seconds, with the
    point's configured parameters `params` (the kernels' own names) over the defaults."""
    from detectors.registry import jump_checks, stuck_min_s

    out: list[Note] = []

    def say(text: str, judges: bool = True) -> None:
        out.append(Note(detector, judges, text))

    d = duration_text
    if detector in ("rate", "tangent_angle", "inverse_velocity"):
        buckets = {"rate": 12, "tangent_angle": 8, "inverse_velocity": 28}[detector]
        default_w = {"rate": 7200.0, "tangent_angle": 21600.0, "inverse_velocity": 21600.0}
        w = max(_param(params, "bucket_s", default_w[detector]), period)
        kind = "rate" if detector == "rate" else "velocity"
        if detector == "inverse_velocity":
            say(f"1/v fitted over {d(buckets * w)} ({buckets} buckets of {d(w)})")
        else:
            say(f"{kind} over {d(buckets * w)} ({buckets} buckets of {d(w)})")
        if detector == "tangent_angle" and not math.isfinite(_param(params, "v_ref", math.nan)):
            learn = _at_least(_param(params, "learn_s", 7 * 86400.0), 30, period)
            say(f"learns v_ref over {d(learn)}, grades from {d(2 * learn)} on",
                judges=2 * learn <= _LONG)
        if detector == "rate" and not (params and "limits" in params):
            learn = _at_least(_param(params, "learn_s", 14 * 86400.0), 30, period)
            say(f"no limits set: learns its levels from the point's history, grades from "
                f"{d(learn)} on", judges=learn <= _LONG)
    elif detector == "threshold":
        n = 3 if not params else int(params.get("raise_samples", 3))
        if n * period >= 3600.0:
            say(f"raises after {n} samples ({d(n * period)}; red at once)")
    elif detector == "step":
        say(f"a step is decided by the sample after it ({d(period)} later)")
        if not jump_checks(quantity):
            say("this quantity comes in bursts: no step is judged", judges=False)
    elif detector == "stuck":
        floor = stuck_min_s(quantity)
        if math.isinf(floor):
            say("a flat line is normal for this quantity: no stuck verdict (out-of-range "
                "values are still faults)", judges=False)
        else:
            after = max(6 * period, floor)
            say(f"stuck after at least {d(after)} unchanged (more where the point shows long "
                f"still spells)")
    elif detector == "generic":
        warm = _at_least(_param(params, "warmup_s", 300.0), 60, period)
        say(f"learns its baseline over {d(warm)}", judges=warm <= _LONG)
        if period > 3600.0:
            say("no daily profile at this cadence (it needs hourly data or faster)")
    elif detector == "spike":
        say(f"compares each sample with the last 15 ({d(15 * period)})")
    elif detector == "cusum":
        say(f"baseline from its first 30 samples ({d(30 * period)})")
    return out
