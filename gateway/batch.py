"""The unit of data between the stages: one poll of one device (docs/contracts.md#batch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.base import Quality

__all__ = ["Batch", "Quality"]

_GOOD = int(Quality.GOOD)  # an IntEnum member costs an attribute lookup per batch


@dataclass(frozen=True, slots=True)
class Batch:
    """`t`: epoch seconds from the clock at read time; `idx`: the site-wide point indices this poll
    covers; `values` float64 and `quality` uint8 per point (NaN where there is no value)."""

    device: str
    t: float
    idx: np.ndarray  # int64[k]
    values: np.ndarray  # float64[k]
    quality: np.ndarray  # uint8[k]
    # the raw measurands before conversion, for the record (GB 51108-2015 §8.2.4 keeps raw data):
    # each point's own register reading (a vibrating wire's frequency) and a second one where
    # the conversion takes it (its thermistor); None when the batch was not read from a device
    raw: np.ndarray | None = None  # float64[k], NaN where none
    raw_aux: np.ndarray | None = None  # float64[k], NaN where none
    # conditions of this read that are faults in their own right (a rain counter that was
    # reset): (position in the batch, condition, details)
    conditions: tuple[tuple[int, str, dict], ...] = ()

    @property
    def valid(self) -> np.ndarray:
        return (self.quality == _GOOD) & np.isfinite(self.values)
