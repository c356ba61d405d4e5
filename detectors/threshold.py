"""Graded thresholds with direction, restore levels, debounce and hold time, as one numba kernel.

Source of the rule: GB 39496-2020 §5.5.4 (four warning colours, blue < yellow < orange < red, set
per monitoring item by the design institute); the alarm / power-cut / restore pattern of coal-mine
methane sensors (AQ 1029; domain.md R3-R4) for hysteresis: a level is released only when the value
is back past that level's restore level, so a value that settles between the restore level and
the threshold keeps its alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numba
import numpy as np

from detectors.base import BlockOutput, DetectorOutput

__all__ = ["ThresholdParams", "ThresholdDetector"]

UPPER, LOWER, BOTH = 1, -1, 2
_SCORE_AT = np.array([0.25, 0.5, 0.75, 1.0])


@dataclass
class ThresholdParams:
    """Per-channel parameters (n channels). Levels are blue, yellow, orange, red; NaN = unused.

    `direction`: +1 upper (higher is worse), -1 lower (lower is worse), 2 both (a lower and an
    upper set, e.g. oxygen). `*_restore`: the value must go back past this to release a level.
    `raise_samples` / `raise_hold`: valid samples past a threshold (a run that only a sample back
    past the restore level interrupts), and seconds since the first of them, needed to raise to
    that level (red raises on the first sample when
    `red_immediate`). `clear_samples` / `clear_hold`: the same for releasing a level.
    `plausible_min` / `plausible_max`: outside is a fault verdict (out_of_range), never a grade.
    """

    direction: np.ndarray  # int8[n]
    upper: np.ndarray  # float64[n, 4]
    lower: np.ndarray  # float64[n, 4]
    upper_restore: np.ndarray  # float64[n, 4]
    lower_restore: np.ndarray  # float64[n, 4]
    raise_samples: np.ndarray  # int32[n]
    raise_hold: np.ndarray  # float64[n]
    clear_samples: np.ndarray  # int32[n]
    clear_hold: np.ndarray  # float64[n]
    red_immediate: np.ndarray  # bool[n]
    plausible_min: np.ndarray  # float64[n]
    plausible_max: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> ThresholdParams:
        nan4 = np.full((n, 4), np.nan)
        return cls(
            direction=np.ones(n, np.int8), upper=nan4.copy(), lower=nan4.copy(),
            upper_restore=nan4.copy(), lower_restore=nan4.copy(),
            raise_samples=np.full(n, 3, np.int32), raise_hold=np.zeros(n),
            clear_samples=np.full(n, 3, np.int32), clear_hold=np.zeros(n),
            red_immediate=np.ones(n, np.bool_), plausible_min=np.full(n, np.nan),
            plausible_max=np.full(n, np.nan),
        )

    @property
    def n(self) -> int:
        return len(self.direction)

    def validate(self) -> None:
        """Shapes, directions, monotone levels and restore levels on the safe side."""
        n = self.n
        for f in fields(self):
            a = getattr(self, f.name)
            want = (n, 4) if f.name in ("upper", "lower", "upper_restore", "lower_restore") else (n,)
            if a.shape != want:
                raise ValueError(f"ThresholdParams.{f.name}: shape {a.shape}, expected {want}")
        names = ("blue", "yellow", "orange", "red")
        for i in range(n):
            d = int(self.direction[i])
            if d not in (UPPER, LOWER, BOTH):
                raise ValueError(f"channel {i}: direction {d} is not 1, -1 or 2")
            for side, thr, rest, sign in (("upper", self.upper, self.upper_restore, 1),
                                          ("lower", self.lower, self.lower_restore, -1)):
                if (side == "upper" and d == LOWER) or (side == "lower" and d == UPPER):
                    continue
                prev_level, prev = None, None
                for k in range(4):
                    v = thr[i, k]
                    if np.isnan(v):
                        continue
                    if prev is not None and sign * (v - prev) < 0:
                        raise ValueError(f"channel {i}: {side} {names[k]} {v:g} is out of order "
                                         f"against {names[prev_level]} {prev:g}")
                    r = rest[i, k]
                    if np.isnan(r) or sign * (v - r) <= 0:
                        raise ValueError(f"channel {i}: {side} restore level of {names[k]} "
                                         f"({r:g}) must be on the safe side of {v:g}")
                    prev_level, prev = k, v


_STATE = {
    # name: (dtype, per-level?)
    "grade": (np.int8, False),
    "active": (np.bool_, True),  # level held, per side: [n, 2, 4] (0 upper, 1 lower)
    "past_n": (np.int32, True),
    "past_t0": (np.float64, True),
    "back_n": (np.int32, True),
    "back_t0": (np.float64, True),
    "score": (np.float32, False),
}


@numba.njit(cache=True, nogil=True)
def _side_score(x: float, thr: np.ndarray, sign: float) -> float:
    """Piecewise-linear: 0 at half the distance below blue, .25 blue, .5 yellow, .75 orange, 1 red."""
    ks = np.empty(4, np.int64)
    m = 0
    for k in range(4):
        if not np.isnan(thr[k]):
            ks[m] = k
            m += 1
    if m == 0:
        return 0.0
    y = sign * x
    first = sign * thr[ks[0]]
    s_first = 0.25 * (ks[0] + 1)
    if y <= first:
        span = sign * thr[ks[1]] - first if m >= 2 else abs(first) * 0.1
        if span <= 0:
            span = 1.0
        # zero at half a level-gap before the first threshold
        lo = first - 0.5 * span
        if y <= lo:
            return 0.0
        return s_first * (y - lo) / (first - lo)
    for j in range(m - 1):
        a = sign * thr[ks[j]]
        b = sign * thr[ks[j + 1]]
        if y <= b:
            sa = 0.25 * (ks[j] + 1)
            sb = 0.25 * (ks[j + 1] + 1)
            if b == a:
                return sb
            return sa + (sb - sa) * (y - a) / (b - a)
    return 0.25 * (ks[m - 1] + 1)


@numba.njit(cache=True, nogil=True)
def _kernel(idx, t, x, valid, direction, thr, rest, raise_n, raise_hold, clear_n, clear_hold,
            red_now, pmin, pmax, grade, active, past_n, past_t0, back_n, back_t0, score_state,
            out_score, out_grade, out_fault, out_ev):
    for j in range(idx.shape[0]):
        i = idx[j]
        v = x[j]
        out_fault[j] = 0
        if not valid[j] or np.isnan(v):
            out_score[j] = score_state[i]
            out_grade[j] = grade[i]
            _evidence(i, grade[i], thr, rest, active, out_ev, j, -1)
            continue
        if (not np.isnan(pmin[i]) and v < pmin[i]) or (not np.isnan(pmax[i]) and v > pmax[i]):
            out_fault[j] = 3  # out_of_range: a fault verdict, the counters do not move
            out_score[j] = score_state[i]
            out_grade[j] = grade[i]
            _evidence(i, grade[i], thr, rest, active, out_ev, j, -1)
            continue
        d = direction[i]
        raw = 0
        score = 0.0
        for s in range(2):  # 0 upper side, 1 lower side
            if (s == 0 and d == -1) or (s == 1 and d == 1):
                continue
            sign = 1.0 if s == 0 else -1.0
            sc = _side_score(v, thr[i, s], sign)
            if sc > score:
                score = sc
            for k in range(4):
                th = thr[i, s, k]
                if np.isnan(th):
                    continue
                past = sign * (v - th) >= 0.0
                back = sign * (v - rest[i, s, k]) < 0.0
                if past:
                    if k + 1 > raw:
                        raw = k + 1
                    if past_n[i, s, k] == 0:
                        past_t0[i, s, k] = t
                    past_n[i, s, k] += 1
                elif back:
                    # only a sample back on the safe side of the restore level interrupts the
                    # raise run: one that dips into the band between restore level and threshold
                    # pauses it, so a value hovering at a threshold still raises (once)
                    past_n[i, s, k] = 0
                if back:
                    if back_n[i, s, k] == 0:
                        back_t0[i, s, k] = t
                    back_n[i, s, k] += 1
                else:
                    back_n[i, s, k] = 0
                if not active[i, s, k]:
                    if past and ((k == 3 and red_now[i]) or (
                            past_n[i, s, k] >= raise_n[i] and t - past_t0[i, s, k] >= raise_hold[i])):
                        active[i, s, k] = True
                        back_n[i, s, k] = 0
                elif back and back_n[i, s, k] >= clear_n[i] and t - back_t0[i, s, k] >= clear_hold[i]:
                    active[i, s, k] = False
                    past_n[i, s, k] = 0
        g = 0
        for s in range(2):
            for k in range(4):
                if active[i, s, k] and k + 1 > g:
                    g = k + 1
        grade[i] = g
        score_state[i] = score
        out_score[j] = score
        out_grade[j] = g
        _evidence(i, g, thr, rest, active, out_ev, j, raw)


@numba.njit(cache=True, nogil=True)
def _evidence(i, g, thr, rest, active, out_ev, j, raw):
    out_ev[j, 0] = np.nan
    out_ev[j, 1] = np.nan
    if g > 0:
        for s in range(2):
            if active[i, s, g - 1]:
                out_ev[j, 0] = thr[i, s, g - 1]
                out_ev[j, 1] = rest[i, s, g - 1]
                break
    out_ev[j, 2] = np.nan if raw < 0 else raw


class ThresholdDetector:
    """Four-colour thresholds with hysteresis over many channels at once.

    Each channel is graded 0 (none) .. 4 (red): a level activates once the value has been past its
    threshold for `raise_samples` valid samples and `raise_hold` seconds, a run interrupted only by
    a sample back past the level's restore level (red at once when `red_immediate`), and releases once the value has been back past the level's restore
    level for `clear_samples` samples and `clear_hold` seconds; the grade is the highest active
    level. A value oscillating between a restore level and its threshold therefore raises once.
    Invalid or NaN samples change nothing (a dead sensor never clears an alarm). A value outside
    the plausible range is a fault verdict (out_of_range), never a grade.

    score: piecewise linear in the value, 0.25 at blue, 0.5 yellow, 0.75 orange, 1.0 at red and
    beyond, 0 from half a level-gap on the safe side of the first set threshold, the highest set level's
    score beyond it; for 'both' the
    larger side. evidence: ("threshold", "restore", "raw_level"): the threshold and restore level
    of the current grade (NaN at grade 0) and the instantaneous level the value is past.

    Example (a methane sensor: orange 1.0 %, red 1.5 %, released below 1.0 %):

    >>> p = ThresholdParams.defaults(1)
    >>> p.upper[0] = [np.nan, np.nan, 1.0, 1.5]
    >>> p.upper_restore[0] = [np.nan, np.nan, 0.95, 1.0]
    >>> det = ThresholdDetector(p)
    >>> ch = np.array([0])
    >>> [int(det.update(ch, float(k), np.array([v]), np.array([True])).grade[0])
    ...  for k, v in enumerate([1.2, 1.2, 1.2, 1.6, 1.2, 0.9, 0.9, 0.9])]
    [0, 0, 3, 4, 4, 4, 4, 0]
    """

    name = "threshold"
    n_evidence = 3
    evidence_names = ("threshold", "restore", "raw_level")

    def __init__(self, params: ThresholdParams):
        params.validate()
        self.n = params.n
        self._set(params)
        n = self.n
        self.grade = np.zeros(n, np.int8)
        self.active = np.zeros((n, 2, 4), np.bool_)
        self.past_n = np.zeros((n, 2, 4), np.int32)
        self.past_t0 = np.zeros((n, 2, 4), np.float64)
        self.back_n = np.zeros((n, 2, 4), np.int32)
        self.back_t0 = np.zeros((n, 2, 4), np.float64)
        self.score = np.zeros(n, np.float32)

    def _set(self, p: ThresholdParams) -> None:
        self.params = p
        self._dir = p.direction.astype(np.int8)
        self._thr = np.ascontiguousarray(np.stack([p.upper, p.lower], axis=1), dtype=np.float64)
        self._rest = np.ascontiguousarray(np.stack([p.upper_restore, p.lower_restore], axis=1),
                                          dtype=np.float64)
        self._raise_n = p.raise_samples.astype(np.int32)
        self._raise_hold = p.raise_hold.astype(np.float64)
        self._clear_n = p.clear_samples.astype(np.int32)
        self._clear_hold = p.clear_hold.astype(np.float64)
        self._red_now = p.red_immediate.astype(np.bool_)
        self._pmin = p.plausible_min.astype(np.float64)
        self._pmax = p.plausible_max.astype(np.float64)

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernel now, not at the first batch."""
        det = ThresholdDetector(ThresholdParams.defaults(1))
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))

    def seed_grades(self, idx: np.ndarray, grades: np.ndarray) -> None:
        """Hold the given grades as active levels (channels without a checkpoint after a crash).

        The alert engine's committed level is the truth after a restart; seeding it keeps a
        restarted gateway from clearing an alarm it merely forgot: the level is released only by
        the usual restore logic.
        """
        for i, g in zip(np.asarray(idx), np.asarray(grades), strict=True):
            if g <= 0:
                continue
            for side, thr in ((0, self.params.upper), (1, self.params.lower)):
                levels = np.flatnonzero(~np.isnan(thr[i, :g]))
                self.active[i, side, levels] = True
            self.grade[i] = max(int(self.grade[i]), int(g))

    def set_params(self, params: ThresholdParams) -> None:
        """New thresholds on reload; the state is kept (same channel count)."""
        params.validate()
        if params.n != self.n:
            raise ValueError(f"new params have {params.n} channels, the detector has {self.n}")
        self._set(params)

    def update(self, idx: np.ndarray, t: float, x: np.ndarray, valid: np.ndarray) -> DetectorOutput:
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        k = idx.shape[0]
        out = DetectorOutput(np.empty(k, np.float32), np.empty(k, np.int8),
                             np.empty(k, np.uint8), np.empty((k, 3), np.float32))
        _kernel(idx, float(t), np.ascontiguousarray(x, dtype=np.float64),
                np.ascontiguousarray(valid, dtype=np.bool_), self._dir, self._thr, self._rest,
                self._raise_n, self._raise_hold, self._clear_n, self._clear_hold, self._red_now,
                self._pmin, self._pmax, self.grade, self.active, self.past_n, self.past_t0,
                self.back_n, self.back_t0, self.score, out.score, out.grade, out.fault,
                out.evidence)
        return out

    def run(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray | None = None) -> BlockOutput:
        """Replay a block row by row with the same kernel (causal: row i sees rows <= i)."""
        m, c = x.shape
        if valid is None:
            valid = np.isfinite(x)
        idx = np.arange(c, dtype=np.int64)
        out = BlockOutput(np.empty((m, c), np.float32), np.empty((m, c), np.int8),
                          np.empty((m, c), np.uint8), np.empty((m, c, 3), np.float32))
        for r in range(m):
            o = self.update(idx, float(t[r]), x[r], valid[r])
            out.score[r], out.grade[r], out.fault[r], out.evidence[r] = o
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in _STATE}

    def load(self, state: dict[str, np.ndarray]) -> None:
        for name, (dtype, per_level) in _STATE.items():
            if name not in state:
                raise ValueError(f"threshold detector state: missing {name!r}")
            a = np.asarray(state[name])
            want = (self.n, 2, 4) if per_level else (self.n,)
            if a.shape != want or a.dtype != dtype:
                raise ValueError(f"threshold detector state {name!r}: {a.dtype}{a.shape}, "
                                 f"expected {np.dtype(dtype)}{want}")
        for name in _STATE:
            setattr(self, name, np.array(state[name], copy=True))
