"""The detector contract (docs/contracts.md#detector-protocol): outputs, grades and quality codes.

A detector keeps its state in arrays shaped by channel count and updates many channels per call:
`update(idx, t, x, valid)` for the live path, `run(t[m], x[m, c])` for replay with the same
kernels, `state()` / `load(state)` for checkpoints. It is pure: no I/O, no clock of its own.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["GRADE_NAMES", "Quality", "DetectorOutput", "BlockOutput", "Detector"]

GRADE_NAMES = ("none", "blue", "yellow", "orange", "red")


class Quality(IntEnum):
    """Quality codes, the same numbers in batches, MQTT and InfluxDB. `MANUAL` marks a value a
    person read (GB 39496-2020 §5.5.1 supplementary and comparison measurements): good data,
    graded, but never a sample of the automatic series, so it never enters a batch."""

    GOOD = 0
    SUSPECT = 1  # plausible but flagged, e.g. stuck
    STALE = 2
    OUT_OF_RANGE = 3
    DEVICE_FAULT = 4
    COMM_FAIL = 5
    MANUAL = 6  # a person's reading (patrol or comparison measurement), never a poll's


class DetectorOutput(NamedTuple):
    """Per updated channel: score in [0, 1] (how far toward red), grade 0..4, fault verdict
    (a Quality code; detectors only say GOOD, SUSPECT or OUT_OF_RANGE) and evidence."""

    score: np.ndarray  # float32[k]
    grade: np.ndarray  # int8[k]
    fault: np.ndarray  # uint8[k]
    evidence: np.ndarray  # float32[k, E]


class BlockOutput(NamedTuple):
    """`DetectorOutput` for a block replay: one row per time step, one column per channel."""

    score: np.ndarray  # float32[m, c]
    grade: np.ndarray  # int8[m, c]
    fault: np.ndarray  # uint8[m, c]
    evidence: np.ndarray  # float32[m, c, E]


@runtime_checkable
class Detector(Protocol):
    """What every detector offers (structural: no base class to inherit)."""

    name: str
    n_evidence: int
    evidence_names: tuple[str, ...]

    def update(self, idx: np.ndarray, t: float, x: np.ndarray, valid: np.ndarray
               ) -> DetectorOutput:
        """One sample at time `t` for the channels `idx` (int64[k]); x float64[k], valid bool[k]."""
        ...

    def run(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray | None = None
            ) -> BlockOutput:
        """Replay t float64[m], x float64[m, c]: the same results as `update` row by row."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every state array (a checkpoint)."""
        ...

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Restore a checkpoint taken by `state()`; ValueError naming the key if it does not fit."""
        ...
