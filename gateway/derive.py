"""Values that need another device's reading: formula points, e.g. freeboard (安全超高) = beach
crest elevation - reservoir water level (docs/requirements.md R3, R11), and the barometric
correction of vibrating-wire piezometers, P += sign * (q0 - Q) with Q from a barometer point
(docs/conversions.md#vibrating-wire-piezometer).

Inputs usually come from different devices polled at different times, so each formula uses its
inputs' latest *good* values and says why when it cannot: an input with no good value within the
formula's `max_age` makes the result `stale`, never a number. Produces a Batch of the formula
points whenever one of their inputs was read, so formulas run through the same detect and grade
stages as measured points. A corrected piezometer whose barometer has no good reading within
`barometer_max_age` keeps its uncorrected value with quality `stale`, so it is seen but never
graded on an uncorrected number.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from detectors.base import Quality
from gateway.batch import Batch
from gateway.config.model import SiteConfig
from gateway.convert import GRAVITY_KPA_PER_M

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
        # barometric correction: per corrected point, its barometer, q0, sign, max age and how a
        # pressure change moves its value (kPa: 1, head: 1/9.81 m per kPa, depth: -1/9.81)
        corrected = [p for p in cfg.points if "barometer" in p.conversion.params]
        self.has_baro = np.zeros(n, dtype=bool)
        self.baro_of = np.full(n, -1, dtype=np.int64)
        self.baro_q0 = np.zeros(n)
        self.baro_gain = np.zeros(n)
        self.baro_age = np.full(n, np.inf)
        for p in corrected:
            c = p.conversion.params
            self.has_baro[p.index] = True
            self.baro_of[p.index] = index[c["barometer"]]
            self.baro_q0[p.index] = c["q0"]
            per_kpa = {"pore_pressure": 1.0, "piezometric_head": 1.0 / GRAVITY_KPA_PER_M}.get(
                p.quantity, -1.0 / GRAVITY_KPA_PER_M)
            self.baro_gain[p.index] = c.get("barometer_sign", 1.0) * per_kpa
            self.baro_age[p.index] = c.get("barometer_max_age", 3600.0)

    def correct(self, batch: Batch) -> Batch:
        """The batch with its barometer-corrected points corrected (or stale, and why)."""
        sel = self.has_baro[batch.idx]
        if not sel.any():
            return batch
        # a barometer read in this same poll counts (its good values are remembered first)
        good = batch.valid & ~sel
        self.good_value[batch.idx[good]] = batch.values[good]
        self.good_t[batch.idx[good]] = batch.t
        pts = batch.idx[sel]
        baro = self.baro_of[pts]
        fresh = batch.t - self.good_t[baro] <= self.baro_age[pts]
        values = batch.values.copy()
        quality = batch.quality.copy()
        delta = self.baro_gain[pts] * (self.baro_q0[pts] - self.good_value[baro])
        values[sel] = np.where(fresh, values[sel] + delta, values[sel])
        quality[sel] = np.where(fresh | (quality[sel] != Quality.GOOD), quality[sel],
                                Quality.STALE)
        return replace(batch, values=values, quality=quality)

    def update(self, batch: Batch) -> Batch | None:
        """Remember the batch's good values; the formula points' batch if an input was read."""
        good = batch.valid
        self.good_value[batch.idx[good]] = batch.values[good]
        self.good_t[batch.idx[good]] = batch.t
        if not self.idx.size:
            return None
        if not self.is_input[batch.idx].any():
            return None
        age = batch.t - np.minimum(self.good_t[self.a], self.good_t[self.b])
        fresh = age <= self.max_age
        values = np.where(fresh, self.good_value[self.a] - self.good_value[self.b], np.nan)
        quality = np.where(fresh, Quality.GOOD, Quality.STALE).astype(np.uint8)
        return Batch("formula", batch.t, self.idx, values, quality)
