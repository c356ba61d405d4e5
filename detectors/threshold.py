"""Graded thresholds with direction, restore levels, debounce and hold time, as one numba kernel.

Source of the rule: GB 39496-2020 §5.5.4 (four warning colours, blue < yellow < orange < red, set
per monitoring item by the design institute); the alarm / power-cut / restore pattern of coal-mine
methane sensors (AQ 1029; docs/standards.md#coal-mine-methane-limits,
docs/requirements.md R3-R4) for hysteresis: a level is released only when the value
is back past that level's restore level, so a value that settles between the restore level and
the threshold keeps its alarm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from detectors.base import Quality
from detectors.channels import ChannelDetector, Debounce, StateSpec, check_shapes, kernel_arrays
from detectors.grading import COUNT_CAP, level_score

__all__ = ["UPPER", "LOWER", "BOTH", "LEVEL_NAMES", "ThresholdParams", "ThresholdDetector"]

UPPER, LOWER, BOTH = 1, -1, 2
LEVEL_NAMES = ("blue", "yellow", "orange", "red")
_OUT_OF_RANGE = int(Quality.OUT_OF_RANGE)
_PER_LEVEL = (2, 4)  # per-level state: side 0 upper / 1 lower, level blue .. red


@dataclass
class ThresholdParams(Debounce):
    """Per-channel parameters (n channels). Levels are blue, yellow, orange, red; NaN = unused.

    `direction`: +1 upper (higher is worse), -1 lower (lower is worse), 2 both (a lower and an
    upper set, e.g. oxygen). `upper` / `lower`: thresholds [n, 4]; only the side(s) the direction
    uses may be set. `upper_restore` / `lower_restore`: the value must go back past this to release
    the level (strictly on the safe side of its threshold; required wherever a threshold is set).
    The debounce block (`channels.Debounce`: `raise_samples`, `raise_hold`, `clear_samples`,
    `clear_hold`, `red_immediate`) applies to each level on its own; a raise run is interrupted
    only by a sample back past the level's restore level.
    `plausible_min` / `plausible_max` (NaN = none): outside is a fault verdict (out_of_range),
    never a grade.
    """

    direction: np.ndarray  # int8[n]
    upper: np.ndarray  # float64[n, 4]
    lower: np.ndarray  # float64[n, 4]
    upper_restore: np.ndarray  # float64[n, 4]
    lower_restore: np.ndarray  # float64[n, 4]
    plausible_min: np.ndarray  # float64[n]
    plausible_max: np.ndarray  # float64[n]

    @classmethod
    def defaults(cls, n: int) -> ThresholdParams:
        """n channels, direction upper, no levels set, debounce 3 samples / 0 s both ways,
        red immediate, no plausibility limits."""
        nan4 = np.full((n, 4), np.nan)
        return cls(
            direction=np.ones(n, np.int8), upper=nan4.copy(), lower=nan4.copy(),
            upper_restore=nan4.copy(), lower_restore=nan4.copy(),
            plausible_min=np.full(n, np.nan), plausible_max=np.full(n, np.nan),
            **cls.debounce_defaults(n),
        )

    @property
    def n(self) -> int:
        return len(self.direction)

    def levels_used(self) -> np.ndarray:
        """bool[n, 2, 4]: the levels that grade (side 0 upper, 1 lower; set and on a used side)."""
        d = np.asarray(self.direction)
        used = np.empty((self.n, *_PER_LEVEL), np.bool_)
        used[:, 0] = (d != LOWER)[:, None] & ~np.isnan(self.upper)
        used[:, 1] = (d != UPPER)[:, None] & ~np.isnan(self.lower)
        return used

    def validate(self) -> None:
        """Shapes, directions, debounce settings, monotone levels, restore levels on the safe
        side. Raises ValueError naming the first bad channel (and level); vectorised, so a site of
        100 000 channels validates in milliseconds."""
        check_shapes(self, ("upper", "lower", "upper_restore", "lower_restore"))
        bad = ~np.isin(self.direction, (UPPER, LOWER, BOTH))
        bad |= self.debounce_problems()
        bad |= np.asarray(self.plausible_min) > np.asarray(self.plausible_max)
        bad |= np.isinf(self.plausible_min) | np.isinf(self.plausible_max)
        for side, thr, rest, sign in (("upper", self.upper, self.upper_restore, 1.0),
                                      ("lower", self.lower, self.lower_restore, -1.0)):
            thr, rest = np.asarray(thr, np.float64), np.asarray(rest, np.float64)
            is_set = ~np.isnan(thr)
            unused = self.direction == (LOWER if side == "upper" else UPPER)
            bad |= unused & is_set.any(axis=1)
            bad |= (is_set & ~(np.isfinite(thr) & np.isfinite(rest))).any(axis=1)
            # worst earlier set level: higher is worse upward, lower is worse downward
            with np.errstate(invalid="ignore"):
                y = sign * thr
                prev = np.full_like(y, np.nan)
                prev[:, 1:] = np.fmax.accumulate(y, axis=1)[:, :-1]
                bad |= (is_set & (y < prev)).any(axis=1)
                bad |= (is_set & ~(sign * (thr - rest) > 0)).any(axis=1)
        for i in np.flatnonzero(bad):
            self._explain(int(i))
        if bad.any():  # pragma: no cover - _explain raises for every flagged channel
            raise ValueError(f"channel {int(np.flatnonzero(bad)[0])}: invalid parameters")

    def _explain(self, i: int) -> None:
        """Raise the ValueError for channel i (scalar; called only for flagged channels)."""
        d = int(self.direction[i])
        if d not in (UPPER, LOWER, BOTH):
            raise ValueError(f"channel {i}: direction {d} is not 1 (upper), -1 (lower) or 2 (both)")
        self.explain_debounce(i)
        lo, hi = float(self.plausible_min[i]), float(self.plausible_max[i])
        if math.isinf(lo) or math.isinf(hi) or lo > hi:
            raise ValueError(f"channel {i}: plausible range [{lo:g}, {hi:g}] is not a finite "
                             f"min <= max (NaN = no limit)")
        for side, thr, rest, sign in (("upper", self.upper, self.upper_restore, 1),
                                      ("lower", self.lower, self.lower_restore, -1)):
            if (side == "upper" and d == LOWER) or (side == "lower" and d == UPPER):
                for k in range(4):
                    if not np.isnan(thr[i, k]):
                        raise ValueError(f"channel {i}: {side} {LEVEL_NAMES[k]} is set but the "
                                         f"direction is {'lower' if d == LOWER else 'upper'}")
                continue
            prev_level, prev = None, None
            for k in range(4):
                v, r = float(thr[i, k]), float(rest[i, k])
                if math.isnan(v):
                    continue
                if math.isinf(v):
                    raise ValueError(f"channel {i}: {side} {LEVEL_NAMES[k]} {v:g} is not finite")
                if prev is not None and sign * (v - prev) < 0:
                    raise ValueError(f"channel {i}: {side} {LEVEL_NAMES[k]} {v:g} is out of order "
                                     f"against {LEVEL_NAMES[prev_level]} {prev:g}")
                if not math.isfinite(r) or sign * (v - r) <= 0:
                    where = "below" if side == "upper" else "above"
                    raise ValueError(f"channel {i}: {side} restore level of {LEVEL_NAMES[k]} "
                                     f"({r:g}) must be finite and {where} the threshold {v:g}")
                if prev is None or sign * (v - prev) > 0:
                    prev_level, prev = k, v


@numba.njit(cache=True, nogil=True, inline="always")
def _side(i, s, t, y, thr, rest, raise_n, raise_hold, clear_n, clear_hold, red_now, active,
          past_n, past_t0, back_n, back_t0):
    """Advance the levels of side s (0 upper, 1 lower) of channel i with y, the value in the
    side's terms where higher is worse (minus the value on the lower side; row 2i + s of thr
    and rest holds that side's levels in the same terms, the lower ones negated). Returns the
    side's score (`grading.level_score`, the scale of every detector), the highest level y is
    past (0 none) and the highest level held."""
    raw = 0
    g = 0
    for k in range(4):
        th = thr[2 * i + s, k]
        if np.isnan(th):
            continue
        past = y >= th
        back = y < rest[2 * i + s, k]
        if past:
            raw = k + 1
            if past_n[i, s, k] == 0:
                past_t0[i, s, k] = t
            if past_n[i, s, k] < COUNT_CAP:
                past_n[i, s, k] += 1
        elif back:
            # only a sample back past the restore level ends a raise run; one in the band
            # between restore level and threshold pauses it, so a value hovering at a
            # threshold raises (once) instead of never
            past_n[i, s, k] = 0
        if back:
            if back_n[i, s, k] == 0:
                back_t0[i, s, k] = t
            if back_n[i, s, k] < COUNT_CAP:
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
        if active[i, s, k]:
            g = k + 1
    return level_score(y, thr, 2 * i + s), raw, g


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, out_score, out_grade, out_fault, out_ev):
    """One sample of channel i at time t, outputs into row j. Shared by both kernels."""
    rn, rh, cn, ch, red, direction, thr, rest, pmin, pmax = P
    grade, active, past_n, past_t0, back_n, back_t0, score_state = S
    out_fault[j] = 0
    raw = -1
    if ok and not np.isnan(v):
        if (np.isinf(v) or (not np.isnan(pmin[i]) and v < pmin[i])
                or (not np.isnan(pmax[i]) and v > pmax[i])):
            out_fault[j] = _OUT_OF_RANGE  # a fault verdict: the counters do not move
        else:
            d = direction[i]
            score = 0.0
            raw = 0
            g = 0
            if d != LOWER:
                score, raw, g = _side(i, 0, t, v, thr, rest, rn, rh, cn, ch, red, active,
                                      past_n, past_t0, back_n, back_t0)
            if d != UPPER:
                sc, r, gl = _side(i, 1, t, -v, thr, rest, rn, rh, cn, ch, red, active,
                                  past_n, past_t0, back_n, back_t0)
                score = max(score, sc)
                raw = max(raw, r)
                g = max(g, gl)
            grade[i] = g
            score_state[i] = score
    g = grade[i]
    out_score[j] = score_state[i]
    out_grade[j] = g
    out_ev[j, 0] = np.nan
    out_ev[j, 1] = np.nan
    if g > 0:
        if active[i, 0, g - 1]:
            out_ev[j, 0] = thr[2 * i, g - 1]
            out_ev[j, 1] = rest[2 * i, g - 1]
        elif active[i, 1, g - 1]:
            out_ev[j, 0] = -thr[2 * i + 1, g - 1]
            out_ev[j, 1] = -rest[2 * i + 1, g - 1]
    out_ev[j, 2] = np.nan if raw < 0 else raw


@numba.njit(cache=True, nogil=True, _nrt=False)
def _row(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """One time step for the channels idx, in order: the one compiled copy of `_step` (inlined
    here), called once per time step by both kernels. Compiled without numba's reference counting
    (`_nrt=False`: it allocates nothing, and every array it sees belongs to its caller for the
    call), which otherwise increments and decrements every array of P and S for each
    channel-sample and cost several times the rule itself (docs/contracts.md#detector-protocol)."""
    for j in range(idx.shape[0]):
        _step(idx[j], j, t, x[j], valid[j], P, S, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _update_kernel(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """The live path: one sample at time t for the channels idx (in order)."""
    _row(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _block_kernel(t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    """Replay: row r is `_update_kernel` over every channel at t[r] (the same `_row`)."""
    cols = np.arange(x.shape[1])
    for r in range(x.shape[0]):
        _row(cols, t[r], x[r], valid[r], P, S, out_score[r], out_grade[r],
             out_fault[r], out_ev[r])


class ThresholdDetector(ChannelDetector):
    """Four-colour thresholds with hysteresis over many channels at once.

    Each channel is graded 0 (none), 1 blue, 2 yellow, 3 orange, 4 red against up to four
    thresholds on its `direction`'s side(s): upper (higher is worse: water level, CH4), lower
    (lower is worse: phreatic depth, dry beach length) or both (O2: a deficiency set and an
    enrichment set; the grade is the higher of the two sides). Per level:

    * raise: the value is past the threshold (>= upper, <= lower) for `raise_samples` valid
      samples and `raise_hold` seconds since the first of them; only a sample back past the
      level's restore level restarts that run (one between restore level and threshold pauses
      it). Red raises on its first sample when `red_immediate`.
    * release: the value is back past the restore level (< upper restore, > lower restore) for
      `clear_samples` consecutive valid samples and `clear_hold` seconds.
    * grade = the highest active level. A value oscillating between a restore level and its
      threshold therefore raises once and never flaps.
    * invalid samples (valid False or NaN) change nothing, so a dead sensor never clears an alarm:
      grade and score are repeated, fault 0 (acquisition owns communication quality). A value
      outside [plausible_min, plausible_max] or infinite is fault 3 (out_of_range), also without
      moving any counter.

    score (float32, instantaneous, not debounced): per side piecewise linear through the set
    levels, 0.5 at blue (the decision, as for every detector), 2/3 yellow, 5/6 orange, 1.0 at red;
    between set levels linear (unset levels are skipped: with only orange 1.0 and red 1.5, 1.25
    scores 0.917); from 0 at half a level-gap on the safe side of the first set threshold (gap =
    distance to the next distinct set threshold, else 10 % of |threshold|, else 1) up to that
    level's score; beyond the highest set level its score (1.0 when red is set). For `both` the
    larger of the two sides (`grading.level_score` on each side, as every graded detector).

    evidence (`evidence_names`): "threshold" and "restore" of the current grade's level (NaN at
    grade 0; upper side first if both sides hold it), "raw_level": the level 0..4 the value is
    past right now, before debounce and hysteresis (NaN for invalid or out-of-range samples).

    Parameters
    ----------
    params : ThresholdParams
        One entry per channel; validated here (ValueError naming channel and level).

    References
    ----------
    GB 39496-2020 尾矿库安全规程 §5.5.4 (blue/yellow/orange/red, per-item warning values from the
    design institute); coal-mine CH4 alarm / power-cut / restore pattern (AQ 1029;
    docs/standards.md#coal-mine-methane-limits: alarm 1.0 %, cut 1.5 %, restore < 1.0 %);
    de-escalation and debounce per docs/requirements.md R4.

    Examples
    --------
    A methane sensor: orange (alarm) 1.0 %, red (cut) 1.5 %, red released below 1.0 %.

    >>> p = ThresholdParams.defaults(1)
    >>> p.upper[0] = [np.nan, np.nan, 1.0, 1.5]
    >>> p.upper_restore[0] = [np.nan, np.nan, 0.95, 1.0]
    >>> det = ThresholdDetector(p)
    >>> ch = np.array([0])
    >>> [int(det.update(ch, float(k), np.array([v]), np.array([True])).grade[0])
    ...  for k, v in enumerate([1.2, 1.2, 1.2, 1.6, 1.2, 0.9, 0.9, 0.9])]
    [0, 0, 3, 4, 4, 4, 4, 0]
    >>> out = det.update(ch, 8.0, np.array([1.25]), np.array([True]))
    >>> round(float(out.score[0]), 3), dict(zip(det.evidence_names, out.evidence[0].tolist()))
    (0.917, {'threshold': nan, 'restore': nan, 'raw_level': 3.0})
    """

    name = "threshold"
    evidence_names = ("threshold", "restore", "raw_level")

    def _state_spec(self) -> StateSpec:
        return {
            "grade": (np.int8, (), 0),
            "active": (np.bool_, _PER_LEVEL, False),  # level held
            "past_n": (np.int32, _PER_LEVEL, 0),  # samples in the current run past the threshold
            "past_t0": (np.float64, _PER_LEVEL, 0.0),  # time of the first of them
            "back_n": (np.int32, _PER_LEVEL, 0),  # consecutive samples back past the restore level
            "back_t0": (np.float64, _PER_LEVEL, 0.0),  # time of the first of them
            "score": (np.float32, (), 0.0),  # last score (repeated for invalid samples)
        }

    def _kernels(self):
        return _update_kernel, _block_kernel

    def _kernel_params(self, params: ThresholdParams) -> tuple[np.ndarray, ...]:
        """P: the debounce block, direction, the levels and the restore levels in y (`_side`),
        the plausible range."""
        rn, rh, cn, ch, red, direction, up, lo, up_rest, lo_rest, pmin, pmax = \
            kernel_arrays(params, negated=("lower", "lower_restore"))
        return (rn, rh, cn, ch, red, direction, _by_side(up, lo), _by_side(up_rest, lo_rest),
                pmin, pmax)

    def _drop_unused_levels(self) -> None:
        """Release levels the parameters no longer have (NaN or the other side): the kernel skips
        them, so an active flag left there could never be released. Then grade = highest active."""
        unused = ~self.params.levels_used()
        self.active[unused] = False
        self.past_n[unused] = 0
        self.back_n[unused] = 0
        self.grade[:] = _highest(self.active)

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        p = ThresholdParams.defaults(1)
        p.upper[0], p.upper_restore[0] = [1.0, 2.0, 3.0, 4.0], [0.5, 1.5, 2.5, 3.5]
        det = ThresholdDetector(p)
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))

    def set_params(self, params: ThresholdParams) -> None:
        """New thresholds on reload; the state is kept (same channel count). Levels the new
        parameters no longer have are released; the others keep their flags and counters."""
        super().set_params(params)
        self._drop_unused_levels()

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state()` checkpoint (names, shapes and dtypes must match exactly; the
        ValueError names the key). Levels the current parameters lack are released."""
        super().load(state)
        self._drop_unused_levels()

    def seed_grades(self, idx: np.ndarray, grades: np.ndarray) -> None:
        """Hold the given grades as active levels (channels without a checkpoint after a crash).

        The alert engine's committed level is the truth after a restart; seeding it keeps a
        restarted gateway from clearing an alarm it merely forgot: every configured level up to
        the grade is held and released only by the usual restore logic (a full `clear_samples`
        run from now). A grade above the configured levels is held at the highest one.
        """
        idx = np.asarray(idx, dtype=np.int64)
        g = np.asarray(grades, dtype=np.int64)
        if idx.shape != g.shape or idx.ndim != 1:
            raise ValueError(f"idx and grades must be 1-D of one length: {idx.shape}, {g.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"channel index out of range 0..{self.n - 1}")
        want = self.params.levels_used()[idx] & (np.arange(1, 5)[None, None, :]
                                                 <= g[:, None, None])
        new = np.zeros_like(self.active)
        np.logical_or.at(new, idx, want)
        new &= ~self.active
        self.active |= new
        self.back_n[new] = 0
        self.grade[idx] = _highest(self.active[idx])


def _by_side(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """float64[2n, 4]: row 2i channel i's upper levels, row 2i + 1 its lower ones. One array,
    not two: `_step` gets every array argument field by field for each sample, and two more
    arrays made the kernel ~8 % slower."""
    return np.ascontiguousarray(np.stack([upper, lower], axis=1).reshape(-1, 4))


def _highest(active: np.ndarray) -> np.ndarray:
    """int8[...]: highest active level 1..4 (0 none) of bool[..., 2, 4]."""
    held = active.any(axis=-2)
    return np.where(held, np.arange(1, 5, dtype=np.int8), np.int8(0)).max(axis=-1).astype(np.int8)
