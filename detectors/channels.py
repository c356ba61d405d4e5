"""The Python side every kernel detector shares: input checks, parameter checks, checkpoints.

A detector module defines its parameters (a dataclass of per-channel arrays with `defaults(n)`
and `validate()`), its state layout and two numba kernels with one calling convention:

    update_kernel(idx, t, x, valid, P, S, score, grade, fault, evidence)
    block_kernel(t, x, valid, P, S, score, grade, fault, evidence)

where P is the tuple of parameter arrays (in dataclass field order, unless the detector's
`_kernel_params` arranges them otherwise; a graded detector's parameters inherit the `Debounce`
block, so its five arrays come first) and S the tuple of state arrays (in layout order).
`ChannelDetector` does the rest, so every detector checks its inputs, replays blocks and takes
checkpoints the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, ClassVar

import numpy as np

from detectors.base import BlockOutput, DetectorOutput
from detectors.cadence import CADENCE_STATE
from detectors.grading import HYSTERESIS_STATE
from detectors.jumps import JUMP_STATE

__all__ = ["ChannelDetector", "Debounce", "StateSpec", "check", "check_shapes", "check_finite",
           "check_levels", "check_factors", "check_jump_z", "kernel_arrays", "hysteresis_spec",
           "cadence_spec", "jump_spec"]

# name -> (dtype, shape after the channel axis, initial value)
StateSpec = dict[str, tuple[Any, tuple[int, ...], float]]


def check(bad: np.ndarray, what: str) -> None:
    """Raise ValueError naming the first channel flagged in `bad` (bool[n])."""
    bad = np.asarray(bad)
    if bad.any():
        raise ValueError(f"channel {int(np.flatnonzero(bad)[0])}: {what}")


def check_shapes(p: Any, per_level: tuple[str, ...] = ()) -> None:
    """Every field of the params dataclass is [n] (or [n, 4] when named in per_level)."""
    n = p.n
    for f in fields(p):
        a = np.asarray(getattr(p, f.name))
        want = (n, 4) if f.name in per_level else (n,)
        if a.shape != want:
            raise ValueError(f"{type(p).__name__}.{f.name}: shape {a.shape}, expected {want}")


def check_finite(p: Any, names: tuple[str, ...], minimum: float = 0.0, strict: bool = False
                 ) -> None:
    """Each named field is finite and >= minimum (> when strict)."""
    for name in names:
        a = np.asarray(getattr(p, name), dtype=np.float64)
        low = a <= minimum if strict else a < minimum
        check(~np.isfinite(a) | low, f"{name} must be finite and {'>' if strict else '>='} "
                                     f"{minimum:g}")


def check_levels(thr: np.ndarray, rest: np.ndarray, name: str = "levels") -> None:
    """Set levels ascend (higher is worse) and each has a finite restore level below it."""
    thr = np.asarray(thr, np.float64)
    rest = np.asarray(rest, np.float64)
    is_set = ~np.isnan(thr)
    check((is_set & ~np.isfinite(thr)).any(axis=1), f"{name}: a level is infinite")
    with np.errstate(invalid="ignore"):
        prev = np.full_like(thr, np.nan)
        prev[:, 1:] = np.fmax.accumulate(thr, axis=1)[:, :-1]
        check((is_set & (thr < prev)).any(axis=1),
              f"{name}: levels must not descend from blue to red")
        check((is_set & ~(np.isfinite(rest) & (rest < thr))).any(axis=1),
              f"{name}: each set level needs a finite restore level below it")
        check((~is_set & ~np.isnan(rest)).any(axis=1), f"{name}: restore level of an unset level")


def check_jump_z(p: Any) -> None:
    """`jump_z` > 0; inf switches the jump checks off."""
    z = np.asarray(p.jump_z, np.float64)
    check(~(z > 0), "jump_z must be > 0 (inf: no jump checks)")


def check_factors(f: np.ndarray, name: str) -> None:
    """Learned-level factors [n, 4]: the set ones positive and ascending (NaN = no such level)."""
    f = np.asarray(f, np.float64)
    is_set = ~np.isnan(f)
    check((is_set & ~(np.isfinite(f) & (f > 0))).any(axis=1), f"{name}: factors must be > 0")
    with np.errstate(invalid="ignore"):
        prev = np.full_like(f, np.nan)
        prev[:, 1:] = np.fmax.accumulate(f, axis=1)[:, :-1]
        check((is_set & (f <= prev)).any(axis=1), f"{name}: factors must ascend")


@dataclass
class Debounce:
    """The debounce block of a graded detector's parameters, per channel (docs/requirements.md
    R4; the rule of `grading.debounce` and of the threshold detector's levels).

    `raise_samples` (>= 1) / `raise_hold` (s, >= 0): valid samples past a level, and seconds
    since the first of them, needed to raise it; `red_immediate`: red raises on its first
    sample. `clear_samples` (>= 1) / `clear_hold` (s, >= 0): samples back past the level's
    restore level, and seconds since the first of them, needed to release it.

    A parameter dataclass inherits it: these are its first fields (the first five arrays of its
    kernels' P), and a point's config sets them by these names like any other parameter.
    """

    raise_samples: np.ndarray  # int32[n]
    raise_hold: np.ndarray  # float64[n]
    clear_samples: np.ndarray  # int32[n]
    clear_hold: np.ndarray  # float64[n]
    red_immediate: np.ndarray  # bool[n]

    @staticmethod
    def debounce_defaults(n: int) -> dict[str, np.ndarray]:
        """3 samples to raise and to release, no hold times, red at once."""
        return {"raise_samples": np.full(n, 3, np.int32), "raise_hold": np.zeros(n),
                "clear_samples": np.full(n, 3, np.int32), "clear_hold": np.zeros(n),
                "red_immediate": np.ones(n, np.bool_)}

    def debounce_problems(self) -> np.ndarray:
        """bool[n]: the channels whose debounce settings are invalid (vectorised)."""
        bad = (np.asarray(self.raise_samples) < 1) | (np.asarray(self.clear_samples) < 1)
        for hold in (self.raise_hold, self.clear_hold):
            hold = np.asarray(hold, np.float64)
            bad |= ~(np.isfinite(hold) & (hold >= 0))
        return bad

    def explain_debounce(self, i: int) -> None:
        """Raise the ValueError naming channel i's invalid debounce setting and its value."""
        for name in ("raise_samples", "clear_samples"):
            if getattr(self, name)[i] < 1:
                raise ValueError(f"channel {i}: {name} {getattr(self, name)[i]} must be >= 1")
        for name in ("raise_hold", "clear_hold"):
            v = float(getattr(self, name)[i])
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"channel {i}: {name} {v:g} must be a finite number of "
                                 "seconds >= 0")

    def check_debounce(self) -> None:
        """ValueError naming the first channel with an invalid debounce setting."""
        bad = np.flatnonzero(self.debounce_problems())
        if bad.size:
            self.explain_debounce(int(bad[0]))


def kernel_arrays(p: Any, negated: tuple[str, ...] = ()) -> tuple[np.ndarray, ...]:
    """The parameter tuple P for the kernels: contiguous arrays with the dtypes of `defaults`,
    the `negated` ones with their sign flipped (levels where lower is worse, graded as minus
    the value: `grading` wants higher worse)."""
    ref = type(p).defaults(1)
    arrays = []
    for f in fields(p):
        a = np.ascontiguousarray(getattr(p, f.name), dtype=getattr(ref, f.name).dtype)
        arrays.append(np.ascontiguousarray(-a) if f.name in negated else a)
    return tuple(arrays)


class ChannelDetector:
    """Base of the kernel detectors: owns state arrays, checks inputs, calls the two kernels.

    Subclasses set `name`, `evidence_names` and implement `_state_spec()` and `_kernels()`;
    state arrays are attributes named as in the spec. `detectors.registry` pairs each detector
    with its parameter class.
    """

    name: ClassVar[str]
    evidence_names: ClassVar[tuple[str, ...]]
    # state keys that are a cache of the rest: a checkpoint without them loads, initialised
    derived: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Any):
        params.validate()
        self.n = int(params.n)
        self.params = params
        self._spec = self._state_spec()
        for key, (dtype, shape, init) in self._spec.items():
            if hasattr(self, key):  # a state array must not shadow n, params, name ...
                raise TypeError(f"{type(self).__name__}: state key {key!r} is taken")
            setattr(self, key, np.full((self.n, *shape), init, dtype=dtype))
        # S in one C call: a generator of getattr cost a microsecond per update, as much as
        # the kernel itself for a small batch
        self._state_getter = attrgetter(*self._spec, "n")  # "n" keeps it a tuple for one key
        self._p = self._kernel_params(params)
        self._update_kernel = self._kernels()[0]

    @property
    def n_evidence(self) -> int:
        return len(self.evidence_names)

    # -- to implement ------------------------------------------------------------------------
    def _state_spec(self) -> StateSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    def _kernels(self) -> tuple[Any, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _kernel_params(self, params: Any) -> tuple[np.ndarray, ...]:
        """The tuple P the kernels take: by default every parameter array in field order."""
        return kernel_arrays(params)

    # -- the contract ------------------------------------------------------------------------
    def _s(self) -> tuple[np.ndarray, ...]:
        return self._state_getter(self)[:-1]

    def update(self, idx: np.ndarray, t: float, x: np.ndarray, valid: np.ndarray) -> DetectorOutput:
        """One sample at time t (s) for the channels idx (int[k], in that order; a repeated
        channel takes its samples in turn). x float64[k], valid bool[k]."""
        idx = np.asarray(idx)
        if idx.size and idx.dtype.kind not in "iu":
            raise TypeError(f"idx must be integer, got {idx.dtype}")
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        x = np.ascontiguousarray(x, dtype=np.float64)
        valid = np.ascontiguousarray(valid, dtype=np.bool_)
        k = idx.shape[0] if idx.ndim == 1 else -1
        if idx.ndim != 1 or x.shape != (k,) or valid.shape != (k,):
            raise ValueError(f"idx, x, valid must be 1-D of one length: {idx.shape}, {x.shape}, "
                             f"{valid.shape}")
        if k and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"channel index out of range 0..{self.n - 1}")
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        return self.update_checked_by_caller(idx, t, x, valid)

    def update_checked_by_caller(self, idx: np.ndarray, t: float, x: np.ndarray,
                                 valid: np.ndarray) -> DetectorOutput:
        """`update` without its input checks, for a caller that guarantees them (the detect
        stage: idx int64 channels in range, x float64, valid bool, 1-D C-contiguous arrays of one
        length, t a finite float). The checks cost more than the kernel for a batch of one
        device's points; anything else calls `update`."""
        k = idx.shape[0]
        out = DetectorOutput(np.empty(k, np.float32), np.empty(k, np.int8),
                             np.empty(k, np.uint8), np.empty((k, len(self.evidence_names)),
                                                             np.float32))
        self._update_kernel(idx, t, x, valid, self._p, self._state_getter(self)[:-1], *out)
        return out

    def run(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray | None = None) -> BlockOutput:
        """Replay a block: t float64[m], x float64[m, n] (every channel), valid bool[m, n]
        (default all True; NaN is invalid either way). Equal to `update(arange(n), t[r], x[r],
        valid[r])` for r = 0..m-1."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n:
            raise ValueError(f"x must be [m, {self.n}], got {x.shape}")
        m = x.shape[0]
        t = np.ascontiguousarray(t, dtype=np.float64)
        if t.shape != (m,) or not np.isfinite(t).all():
            raise ValueError(f"t must be {m} finite times, got shape {t.shape}")
        valid = (np.ones(x.shape, np.bool_) if valid is None
                 else np.ascontiguousarray(valid, dtype=np.bool_))
        if valid.shape != x.shape:
            raise ValueError(f"valid must be {x.shape}, got {valid.shape}")
        e = self.n_evidence
        out = BlockOutput(np.empty((m, self.n), np.float32), np.empty((m, self.n), np.int8),
                          np.empty((m, self.n), np.uint8), np.empty((m, self.n, e), np.float32))
        self._kernels()[1](t, x, valid, self._p, self._s(), *out)
        return out

    def set_params(self, params: Any) -> None:
        """New parameters on reload (same channel count and state layout); the state is kept."""
        params.validate()
        if params.n != self.n:
            raise ValueError(f"new params have {params.n} channels, the detector has {self.n}")
        old, self.params = self.params, params
        if self._state_spec() != self._spec:
            self.params = old
            raise ValueError(f"{self.name}: the new params change the state layout; "
                             "start a new detector instead")
        self._p = self._kernel_params(params)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every state array (a checkpoint)."""
        return {key: getattr(self, key).copy() for key in self._spec}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state()` checkpoint; names, shapes and dtypes must match (the ValueError
        names the key); a `derived` key may be missing."""
        unknown = sorted(set(state) - set(self._spec))
        if unknown:
            raise ValueError(f"{self.name} detector state: unknown key {unknown[0]!r}")
        state = dict(state)
        for key, (dtype, shape, init) in self._spec.items():
            if key not in state and key in self.derived:
                # a cache the kernels rebuild from the rest (a checkpoint of an older version)
                state[key] = np.full((self.n, *shape), init, dtype=dtype)
            if key not in state:
                raise ValueError(f"{self.name} detector state: missing {key!r}")
            a = np.asarray(state[key])
            want = (self.n, *shape)
            if a.shape != want or a.dtype != dtype:
                raise ValueError(f"{self.name} detector state {key!r}: {a.dtype}{a.shape}, "
                                 f"expected {np.dtype(dtype)}{want}")
        for key in self._spec:
            setattr(self, key, np.array(state[key], copy=True))

    def nbytes(self) -> int:
        """Bytes of state (what a checkpoint holds)."""
        return sum(getattr(self, key).nbytes for key in self._spec)


def hysteresis_spec() -> StateSpec:
    """State entries of `grading.debounce`, for detectors that grade."""
    return {key: (dtype, (), 0) for key, dtype in HYSTERESIS_STATE.items()}


def cadence_spec() -> StateSpec:
    """State entries of `cadence.observe_period`."""
    return {key: (dtype, (), init) for key, (dtype, init) in CADENCE_STATE.items()}


def jump_spec() -> StateSpec:
    """State entries of `jumps.jump_step`."""
    return {key: (dtype, (), init) for key, (dtype, init) in JUMP_STATE.items()}
