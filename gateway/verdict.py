"""What the detect stage says of each sample: one `Verdict` type and one rule that combines a
point's detectors (docs/contracts.md#detector-protocol).

The rule: a point's grade is the highest any of its detectors gives, and the detector that first
reached it is the one the event names, with its evidence; its score is the highest score; its
fault verdict the most severe. The sample's quality is acquisition's when that is not good, else
the detectors' fault verdict, and that one quality is what telemetry, the database and the alert
engine see. The live path combines one batch (arrays [k]), replay a block of rows ([m, c]); both
use `combine`, so they cannot drift apart.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Part", "Combined", "Verdict", "combine", "merge_quality"]


class Part(NamedTuple):
    """One detector's outputs for the columns `cols` of the combined shape (the last axis)."""

    name: str
    evidence_names: tuple[str, ...]
    cols: np.ndarray  # int64[n]: the columns this detector serves
    score: np.ndarray  # float32[..., n]
    grade: np.ndarray  # int8[..., n]
    fault: np.ndarray  # uint8[..., n]
    evidence: np.ndarray  # float32[..., n, E]


class Combined(NamedTuple):
    score: np.ndarray
    grade: np.ndarray
    fault: np.ndarray
    driver: np.ndarray  # int64: index of the part that set the grade (-1: none)
    pos: np.ndarray  # int64: the point's column within that part


def combine(parts: list[Part], shape: tuple[int, ...]) -> Combined:
    """The rule above over arrays of `shape` (last axis: the points)."""
    score = np.zeros(shape, np.float32)
    grade = np.zeros(shape, np.int8)
    fault = np.zeros(shape, np.uint8)
    driver = np.full(shape, -1, np.int64)
    pos = np.zeros(shape, np.int64)
    for d, part in enumerate(parts):
        cols = part.cols
        if cols.size == shape[-1]:
            # the part serves every point (cols is then 0..n-1): the same rule without the
            # fancy indexing, which is most of a live batch's cost
            np.maximum(score, part.score, out=score)
            np.maximum(fault, part.fault, out=fault)
            better = (part.grade > grade) | (driver < 0)
            np.copyto(grade, part.grade, where=better)
            np.copyto(driver, d, where=better)
            np.copyto(pos, cols, where=better)
            continue
        score[..., cols] = np.maximum(score[..., cols], part.score)
        fault[..., cols] = np.maximum(fault[..., cols], part.fault)
        better = (part.grade > grade[..., cols]) | (driver[..., cols] < 0)
        grade[..., cols] = np.where(better, part.grade, grade[..., cols])
        driver[..., cols] = np.where(better, d, driver[..., cols])
        pos[..., cols] = np.where(better, np.arange(cols.size), pos[..., cols])
    return Combined(score, grade, fault, driver, pos)


def merge_quality(acquired: np.ndarray, fault: np.ndarray) -> np.ndarray:
    """Acquisition's quality where it is not good (0), else the detectors' fault verdict."""
    return np.where(acquired == 0, fault, acquired).astype(np.uint8)


class Verdict:
    """One batch (or one replayed row) of points: `grade`, `score`, `fault` (the detectors'),
    `quality` (merged), and per point the detector that set the grade and its evidence, looked
    up only when an event needs them."""

    __slots__ = ("grade", "score", "fault", "quality", "_driver", "_pos", "_parts", "_row")

    def __init__(self, combined: Combined, quality: np.ndarray, parts: list[Part],
                 row: int | None = None):
        pick = (lambda a: a) if row is None else (lambda a: a[row])
        self.grade = pick(combined.grade)
        self.score = pick(combined.score)
        self.fault = pick(combined.fault)
        self.quality = quality
        self._driver = pick(combined.driver)
        self._pos = pick(combined.pos)
        self._parts = parts
        self._row = row

    def detector_of(self, j: int) -> str:
        d = self._driver[j]
        return self._parts[d].name if d >= 0 else "none"

    @property
    def detector(self) -> list[str]:
        return [self.detector_of(j) for j in range(len(self.grade))]

    def _locate(self, j: int, detector: str | None) -> tuple[Part, int] | None:
        if detector is None:
            d = self._driver[j]
            return (self._parts[d], int(self._pos[j])) if d >= 0 else None
        for part in self._parts:
            if part.name == detector:
                hit = np.flatnonzero(part.cols == j)
                return (part, int(hit[0])) if hit.size else None
        return None

    def evidence_of(self, j: int, detector: str | None = None) -> dict[str, float]:
        """Point j's evidence from the detector that set its grade, or from `detector`."""
        found = self._locate(j, detector)
        if found is None:
            return {}
        part, p = found
        evidence = part.evidence if self._row is None else part.evidence[self._row]
        return {name: float(v) for name, v in zip(part.evidence_names, evidence[p],
                                                   strict=True)}

    def grade_of(self, j: int, detector: str) -> int:
        """Point j's grade by one of its detectors (0 when it does not run it)."""
        found = self._locate(j, detector)
        if found is None:
            return 0
        part, p = found
        grade = part.grade if self._row is None else part.grade[self._row]
        return int(grade[p])
