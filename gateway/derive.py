"""Formula points: values computed from other points, e.g. freeboard (安全超高) = beach crest
elevation - reservoir water level (domain.md R3, R11).

Inputs usually come from different devices polled at different times, so each formula uses its
inputs' latest *good* values and says why when it cannot: an input with no good value within the
formula's `max_age` makes the result `stale`, never a number. Produces a Batch of the formula
points whenever one of their inputs was read, so formulas run through the same detect and grade
stages as measured points.
"""

from __future__ import annotations

import numpy as np

from detectors.base import Quality
from gateway.batch import Batch
from gateway.config.model import SiteConfig

__all__ = ["FormulaPoints"]


class FormulaPoints:
    def __init__(self, cfg: SiteConfig):
        derived = [p for p in cfg.points if p.formula is not None]
        index = {p.name: p.index for p in cfg.points}
        n = len(cfg.points)
        self.good_value = np.full(n, np.nan)
        self.good_t = np.full(n, -np.inf)
        self.idx = np.array([p.index for p in derived], dtype=np.int64)
        self.a = np.array([index[p.formula.inputs[0]] for p in derived], dtype=np.int64)
        self.b = np.array([index[p.formula.inputs[1]] for p in derived], dtype=np.int64)
        self.max_age = np.array([p.formula.max_age for p in derived])
        self.is_input = np.zeros(n, dtype=bool)
        self.is_input[self.a] = True
        self.is_input[self.b] = True

    def update(self, batch: Batch) -> Batch | None:
        """Remember the batch's good values; the formula points' batch if an input was read."""
        if not self.idx.size:
            return None
        good = batch.valid
        self.good_value[batch.idx[good]] = batch.values[good]
        self.good_t[batch.idx[good]] = batch.t
        if not self.is_input[batch.idx].any():
            return None
        age = batch.t - np.minimum(self.good_t[self.a], self.good_t[self.b])
        fresh = age <= self.max_age
        values = np.where(fresh, self.good_value[self.a] - self.good_value[self.b], np.nan)
        quality = np.where(fresh, Quality.GOOD, Quality.STALE).astype(np.uint8)
        return Batch("formula", batch.t, self.idx, values, quality)
