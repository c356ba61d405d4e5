"""river's HalfSpaceTrees over a site's channel vector: the optional multivariate detector and
the baseline the benchmarks compare the kernels against."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.base import BlockOutput, DetectorOutput

__all__ = ["RiverParams", "RiverHalfSpaceTrees"]


@dataclass(frozen=True)
class RiverParams:
    """Settings of one model over a vector of `n` channels.

    `n_trees`, `height`, `window_size`, `seed`: HalfSpaceTrees' own. `q`: the quantile of past
    scores above which a vector is anomalous (river's QuantileFilter). `raise_samples` /
    `clear_samples`: consecutive anomalous / normal vectors to start / end an event (debounce).
    `grade_level`: the grade an event carries (1..4). `warmup`: vectors before any event (the
    trees score against the previous window, so the first window is not judged).
    """

    n: int
    n_trees: int = 10
    height: int = 8
    window_size: int = 250
    seed: int = 42
    q: float = 0.99
    raise_samples: int = 3
    clear_samples: int = 3
    grade_level: int = 1
    warmup: int = 250

    def validate(self) -> None:
        """ValueError naming the bad setting."""
        for name in ("n", "n_trees", "height", "window_size", "raise_samples", "clear_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"RiverParams.{name} must be >= 1")
        if not 0.5 < self.q < 1.0:
            raise ValueError("RiverParams.q must be in (0.5, 1)")
        if not 1 <= self.grade_level <= 4:
            raise ValueError("RiverParams.grade_level must be 1..4")
        if self.warmup < 0:
            raise ValueError("RiverParams.warmup must be >= 0")


class RiverHalfSpaceTrees:
    """One HalfSpaceTrees model over all channels of a site (a vector per time step).

    Each call takes the newest value of the channels given; the other channels keep their last
    value, so the vector is complete once every channel has been seen. The vector goes through a
    MinMaxScaler (HalfSpaceTrees expects features in [0, 1]) into the trees; the score (river's,
    in [0, 1], higher is more anomalous) is compared with the running `q` quantile of past scores
    (QuantileFilter, which also keeps anomalies out of the trees' learning). An event, with grade
    `grade_level`, starts after `raise_samples` anomalous vectors in a row and ends after
    `clear_samples` normal ones. Every channel of the call gets the vector's score and grade;
    fault is 0. It runs in Python, one vector at a time: a reference and an option for small
    sites, not the hot path (see benchmarks/detector_cost.py). river is imported here, lazily, so
    `import detectors` stays light.

    evidence (`evidence_names`): "score" (the vector's), "threshold" (the quantile it is
    compared with; NaN before it exists).

    Parameters
    ----------
    params : RiverParams

    References
    ----------
    Tan, S. C., Ting, K. M., Liu, T. F. (2011). Fast anomaly detection for streaming data. IJCAI
    2011, 1511-1516, doi:10.5591/978-1-57735-516-8/IJCAI11-254. Montiel, J. et al. (2021).
    River: machine learning for streaming data in Python. JMLR 22(110), 1-8.

    Examples
    --------
    Two correlated channels; at step 600 they part ways:

    >>> rng = np.random.default_rng(1)
    >>> base = np.sin(np.arange(800) / 20)
    >>> x = np.c_[base, base] + rng.normal(0, 0.05, (800, 2))
    >>> x[600:650, 1] = -x[600:650, 0]
    >>> det = RiverHalfSpaceTrees(RiverParams(2, window_size=100, warmup=200))
    >>> out = det.run(np.arange(800.0), x)
    >>> bool(out.grade[600:650].any()), int(out.grade.max())
    (True, 1)
    """

    name = "river_hst"
    evidence_names = ("score", "threshold")

    def __init__(self, params: RiverParams):
        params.validate()
        from river import anomaly, preprocessing  # lazily: river and its scipy are heavy

        self.params = params
        self.n = params.n
        model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
            n_trees=params.n_trees, height=params.height, window_size=params.window_size,
            seed=params.seed)
        self.model: Any = anomaly.QuantileFilter(model, q=params.q)
        self.last = np.full(self.n, np.nan)
        self.counters = np.zeros(4, np.int64)  # vectors seen, anomalous run, normal run, in event
        self.threshold = math.nan
        self.score = 0.0

    @property
    def n_evidence(self) -> int:
        return len(self.evidence_names)

    def _vector(self) -> float | None:
        """Score, classify and learn the current vector; None while a channel is missing."""
        if np.isnan(self.last).any():
            return None
        features = {i: float(v) for i, v in enumerate(self.last)}
        score = float(self.model.score_one(features))
        seen, up, down, active = (int(c) for c in self.counters)
        anomalous = seen >= self.params.warmup and bool(self.model.classify(score))
        self.threshold = float(self.model.quantile.get() or math.nan)
        self.model.learn_one(features)
        seen += 1
        up, down = (up + 1, 0) if anomalous else (0, down + 1)
        if not active and up >= self.params.raise_samples:
            active = 1
        elif active and down >= self.params.clear_samples:
            active = 0
        self.counters[:] = (seen, up, down, active)
        self.score = min(max(score, 0.0), 1.0)
        return score

    def update(self, idx: np.ndarray, t: float, x: np.ndarray, valid: np.ndarray) -> DetectorOutput:
        """The newest values of the channels idx at time t; returns the vector's verdict for each."""
        idx = np.asarray(idx, dtype=np.int64)
        x = np.asarray(x, dtype=np.float64)
        valid = np.asarray(valid, dtype=np.bool_)
        if idx.shape != x.shape or idx.shape != valid.shape or idx.ndim != 1:
            raise ValueError(f"idx, x, valid must be 1-D of one length: {idx.shape}, {x.shape}, "
                             f"{valid.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"channel index out of range 0..{self.n - 1}")
        ok = valid & np.isfinite(x)
        self.last[idx[ok]] = x[ok]
        if ok.any():
            self._vector()
        k = idx.size
        grade = self.params.grade_level if self.counters[3] else 0
        ev = np.tile(np.float32([self.score, self.threshold]), (k, 1))
        return DetectorOutput(np.full(k, self.score, np.float32), np.full(k, grade, np.int8),
                              np.zeros(k, np.uint8), ev)

    def run(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray | None = None) -> BlockOutput:
        """Replay t[m], x[m, n]: `update(arange(n), t[r], x[r], valid[r])` row by row."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n:
            raise ValueError(f"x must be [m, {self.n}], got {x.shape}")
        m = x.shape[0]
        valid = np.ones(x.shape, np.bool_) if valid is None else np.asarray(valid, np.bool_)
        out = BlockOutput(np.empty((m, self.n), np.float32), np.empty((m, self.n), np.int8),
                          np.empty((m, self.n), np.uint8), np.empty((m, self.n, 2), np.float32))
        idx = np.arange(self.n)
        for r in range(m):
            o = self.update(idx, float(t[r]), x[r], valid[r])
            for block, row in zip(out, o, strict=True):
                block[r] = row
        return out

    def state(self) -> dict[str, np.ndarray]:
        """A checkpoint as arrays: the pickled model (uint8), the last vector and the counters."""
        blob = pickle.dumps((self.model, self.threshold, self.score))
        return {"model": np.frombuffer(blob, np.uint8).copy(), "last": self.last.copy(),
                "counters": self.counters.copy()}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state()` checkpoint (only load checkpoints this gateway wrote: pickle)."""
        for key in ("model", "last", "counters"):
            if key not in state:
                raise ValueError(f"river_hst detector state: missing {key!r}")
        if np.asarray(state["last"]).shape != (self.n,):
            raise ValueError(f"river_hst detector state 'last': shape "
                             f"{np.asarray(state['last']).shape}, expected ({self.n},)")
        self.model, self.threshold, self.score = pickle.loads(
            np.asarray(state["model"], np.uint8).tobytes())
        self.last = np.array(state["last"], np.float64)
        self.counters = np.array(state["counters"], np.int64)

    def nbytes(self) -> int:
        """Bytes of a checkpoint (the pickled model dominates)."""
        return sum(a.nbytes for a in self.state().values())
