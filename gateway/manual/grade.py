"""Grading a manual reading, and finding the automatic value to compare it with.

A reading is graded by the point's own threshold detector: the same kernel, the same levels,
restore levels and plausible range (`gateway.detect.threshold_params`), on a channel of its own
with a fresh state, so the automatic series' debounce and hysteresis are untouched. A person's
reading is one deliberate measurement, not noise to debounce: it raises on its first sample. The
series detectors (rate, stuck, spike …) need a series and do not judge single readings.

The automatic value is the point's nearest automatic one within `window_s` of the reading: a
5-minute window's mean (its centre's time) or the gateway's latest good sample, whichever is
nearer in time. None when the gateway had nothing that close: the reading is then stored and
graded but not compared.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from detectors.threshold import ThresholdDetector, ThresholdParams
from gateway.config.model import SiteConfig

__all__ = ["ReadingGrade", "grade_reading", "nearest_automatic", "compare", "COMPARE_WINDOW_S"]

COMPARE_WINDOW_S = 900.0  # at least: a quarter of an hour either side (else the poll period)


@dataclass(frozen=True)
class ReadingGrade:
    level: int  # 0 none .. 4 red
    threshold: float | None  # the level's threshold (None below blue)
    evidence: dict[str, float]
    out_of_range: bool  # outside the plausible range: a fault verdict, never a grade


def _one_channel(params: ThresholdParams, i: int) -> ThresholdParams:
    picked = {f.name: np.array(getattr(params, f.name)[i:i + 1]) for f in fields(params)}
    one = ThresholdParams(**picked)
    one.raise_samples[:] = 1
    one.raise_hold[:] = 0.0
    return one


def grade_reading(cfg: SiteConfig, i: int, value: float, t: float,
                  params: ThresholdParams | None = None) -> ReadingGrade:
    """Grade `value` of point `i` (`params`: the site's threshold parameters, built once)."""
    if params is None:
        from gateway.detect import threshold_params

        params = threshold_params(cfg)
    det = ThresholdDetector(_one_channel(params, i))
    out = det.update(np.zeros(1, np.int64), float(t), np.array([value], np.float64),
                     np.ones(1, np.bool_))
    level = int(out.grade[0])
    evidence = {name: float(v) for name, v in zip(det.evidence_names, out.evidence[0],
                                                  strict=True)}
    threshold = evidence.get("threshold")
    return ReadingGrade(level, threshold if level and threshold == threshold else None,
                        evidence, bool(out.fault[0]))


def nearest_automatic(at: float, windows: list[tuple[float, int, float]],
                      last: tuple[float, float] | None, window_s: float
                      ) -> tuple[float, float, str] | None:
    """(value, time, source) of the automatic value nearest to `at` within `window_s`:
    `windows` are (start, good samples, sum) of 5-minute windows, `last` the latest good sample
    (time, value). Source is "window" or "sample".

    >>> nearest_automatic(1000.0, [(600.0, 2, 20.0), (900.0, 1, 11.0)], (1290.0, 12.0), 900.0)
    (11.0, 1050.0, 'window')
    >>> nearest_automatic(1000.0, [], None, 900.0) is None
    True
    """
    best: tuple[float, float, str] | None = None
    for start, n, total in windows:
        if n <= 0:
            continue
        centre = start + 150.0
        if abs(centre - at) <= window_s and (best is None or abs(centre - at) < abs(best[1] - at)):
            best = (total / n, centre, "window")
    if last is not None:
        t, v = last
        if v == v and abs(t - at) <= window_s and (best is None or abs(t - at) < abs(best[1] - at)):
            best = (v, t, "sample")
    return best


def compare(manual: float, automatic: tuple[float, float, str] | None,
            tolerance: float | None) -> dict | None:
    """The comparison block of a reading (None when there is nothing to compare with).
    `agrees` is None when the point sets no `manual_tolerance`.

    >>> compare(1253.40, (1253.10, 0.0, "window"), 0.1)["agrees"]
    False
    """
    if automatic is None:
        return None
    value, t, source = automatic
    diff = manual - value
    return {"manual": manual, "automatic": value, "automatic_at": int(round(t * 1000)),
            "automatic_source": source, "difference": diff, "tolerance": tolerance,
            "agrees": None if tolerance is None else bool(abs(diff) <= tolerance)}
