"""The unit of data between the stages: one poll of one device (docs/contracts.md#batch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.base import Quality

__all__ = ["Batch", "Quality"]


@dataclass(frozen=True, slots=True)
class Batch:
    """`t`: epoch seconds from the clock at read time; `idx`: the site-wide point indices this poll
    covers; `values` float64 and `quality` uint8 per point (NaN where there is no value)."""

    device: str
    t: float
    idx: np.ndarray  # int64[k]
    values: np.ndarray  # float64[k]
    quality: np.ndarray  # uint8[k]

    @property
    def valid(self) -> np.ndarray:
        return (self.quality == Quality.GOOD) & np.isfinite(self.values)
