"""Rate of change over a time window, as a robust slope with graded limits (domain.md R5)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detectors.buckets import BUCKET_STATE, bucket_add, bucket_means, theil_sen
from detectors.channels import (
    ChannelDetector,
    StateSpec,
    check,
    check_debounce,
    check_finite,
    check_levels,
    check_shapes,
    debounce_defaults,
    hysteresis_spec,
)
from detectors.grading import debounce, level_held, level_past, level_score

__all__ = ["RISE", "FALL", "EITHER", "RateParams", "RateDetector"]

RISE, FALL, EITHER = 1, -1, 2


@dataclass
class RateParams:
    """Per-channel parameters (n channels).

    `direction`: which change is worse: +1 rise (water level, displacement), -1 fall (phreatic
    burial depth: the phreatic line rises when the depth falls), 2 either (the size of the rate).
    `bucket_s`: width of a time bucket (s); the window is `n_buckets` of them (a detector
    argument). `per_s`: the rate's time unit in seconds (3600 per hour, 86400 per day).
    `min_buckets` (>= 2): non-empty buckets needed before a slope is trusted.
    `limits` [n, 4]: blue, yellow, orange, red rates (units per `per_s`, in the worse direction,
    so positive for a phreatic rise too; NaN = unused); `restore` [n, 4]: a level is released
    when the rate is back below this. Debounce as in the threshold detector: `raise_samples`,
    `raise_hold` (s), `clear_samples`, `clear_hold` (s), `red_immediate`.
    """

    direction: np.ndarray  # int8[n]
    bucket_s: np.ndarray  # float64[n]
    per_s: np.ndarray  # float64[n]
    min_buckets: np.ndarray  # int32[n]
    limits: np.ndarray  # float64[n, 4]
    restore: np.ndarray  # float64[n, 4]
    raise_samples: np.ndarray  # int32[n]
    raise_hold: np.ndarray  # float64[n]
    clear_samples: np.ndarray  # int32[n]
    clear_hold: np.ndarray  # float64[n]
    red_immediate: np.ndarray  # bool[n]

    @classmethod
    def defaults(cls, n: int) -> RateParams:
        """Rise is worse, 2-hour buckets, rate per day, 3 buckets to start, no limits."""
        return cls(direction=np.ones(n, np.int8), bucket_s=np.full(n, 7200.0),
                   per_s=np.full(n, 86400.0), min_buckets=np.full(n, 3, np.int32),
                   limits=np.full((n, 4), np.nan), restore=np.full((n, 4), np.nan),
                   **debounce_defaults(n))

    @property
    def n(self) -> int:
        return len(self.direction)

    def validate(self) -> None:
        """ValueError naming the first bad channel."""
        check_shapes(self, ("limits", "restore"))
        check(~np.isin(self.direction, (RISE, FALL, EITHER)), "direction must be 1, -1 or 2")
        check_finite(self, ("bucket_s", "per_s"), strict=True)
        check(np.asarray(self.min_buckets) < 2, "min_buckets must be >= 2")
        check_levels(self.limits, self.restore, "limits")
        check_debounce(self)


@numba.njit(cache=True, nogil=True, inline="always")
def _step(i, j, t, v, ok, P, S, tm, xm, nm, pairs, out_score, out_grade, out_fault, out_ev):
    direction, bucket_s, per_s, min_b, limits, restore, rn, rh, cn, ch, red = P
    grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl, b_id, b_n, b_st, b_sx, last_id, rate, \
        score = S
    out_fault[j] = 0  # a rate says nothing about the sensor's health
    if ok and np.isfinite(v) and bucket_add(i, t, v, bucket_s[i], b_id, b_n, b_st, b_sx,
                                            last_id):
        k = bucket_means(i, bucket_s[i], b_id, b_n, b_st, b_sx, last_id, tm, xm, nm)
        if k >= min_b[i]:
            r = theil_sen(tm, xm, k, pairs) * per_s[i]
            rate[i] = r
            d = direction[i]
            y = r if d == 1 else (-r if d == -1 else abs(r))
            score[i] = level_score(y, limits, i)
            debounce(i, t, level_past(y, limits, i), level_held(y, restore, i),
                     (grade, up_n, up_t0, up_lvl, dn_n, dn_t0, dn_lvl), (rn, rh, cn, ch, red))
        out_ev[j, 1] = k
        out_ev[j, 2] = tm[k - 1] - tm[0] if k > 0 else 0.0
    else:
        out_ev[j, 1] = np.nan
        out_ev[j, 2] = np.nan
    out_ev[j, 0] = rate[i]
    out_score[j] = score[i]
    out_grade[j] = grade[i]


@numba.njit(cache=True, nogil=True)
def _update_kernel(idx, t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    nb = S[7].shape[1]
    tm, xm, nm = np.empty(nb), np.empty(nb), np.empty(nb)
    pairs = np.empty(nb * (nb - 1) // 2 + 1)
    for j in range(idx.shape[0]):
        _step(idx[j], j, t, x[j], valid[j], P, S, tm, xm, nm, pairs, out_score, out_grade,
              out_fault, out_ev)


@numba.njit(cache=True, nogil=True)
def _block_kernel(t, x, valid, P, S, out_score, out_grade, out_fault, out_ev):
    nb = S[7].shape[1]
    tm, xm, nm = np.empty(nb), np.empty(nb), np.empty(nb)
    pairs = np.empty(nb * (nb - 1) // 2 + 1)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            _step(c, c, t[r], x[r, c], valid[r, c], P, S, tm, xm, nm, pairs, out_score[r],
                  out_grade[r], out_fault[r], out_ev[r])


class RateDetector(ChannelDetector):
    """Graded rate of change over a time window: water-level rise, displacement velocity,
    phreatic rise.

    Each channel's window (`n_buckets` buckets of `bucket_s` seconds, e.g. 12 x 2 h = 24 h) is
    kept as bucket counts and sums, never as raw samples. The rate is the Theil-Sen slope (the
    median of the pairwise slopes) of the bucket means, in units per `per_s`: a spike or a bad
    hour moves one bucket mean and hardly the median. With fewer than `min_buckets` non-empty
    buckets there is no rate, and nothing changes (a dead sensor never clears an alarm).

    The rate, taken in the worse direction, is graded against `limits` with `restore` levels and
    the debounce of `detectors.grading.debounce` (the threshold detector's rule): an oscillating
    rate raises once. fault is always 0 (good): a rate judges the structure, not the sensor.

    evidence (`evidence_names`): "rate" (units per `per_s`, signed; the last one computed),
    "buckets" (non-empty buckets in the window) and "span_s" (seconds between the oldest and the
    newest bucket mean); both NaN for a sample that was not used (invalid, NaN or too old).

    Parameters
    ----------
    params : RateParams
        One entry per channel; validated here.
    n_buckets : int
        Buckets per window (>= 2), the same for all channels.

    References
    ----------
    GB 51108-2015 §8.3.3 (displacement and displacement-rate warning values per item); domain.md
    R5 (velocity from the cumulative series over a window of at least one GNSS session; open-pit
    references 10 mm/d, 5 mm/h). Theil, H. (1950), Proc. KNAW 53; Sen, P. K. (1968), JASA 63,
    1379-1389, doi:10.1080/01621459.1968.10480934.

    Examples
    --------
    A water level rising 0.5 m a day, sampled every 10 min, limits 0.2 / 0.4 / 0.6 / 0.8 m/d:

    >>> p = RateParams.defaults(1)
    >>> p.bucket_s[0] = 3600.0
    >>> p.limits[0] = [0.2, 0.4, 0.6, 0.8]
    >>> p.restore[0] = [0.15, 0.35, 0.55, 0.75]
    >>> det = RateDetector(p, n_buckets=6)
    >>> ch, ok = np.array([0]), np.array([True])
    >>> outs = [det.update(ch, 600.0 * k, np.array([1250.0 + 0.5 * k / 144]), ok)
    ...         for k in range(60)]
    >>> [int(o.grade[0]) for o in outs[::10]]
    [0, 0, 2, 2, 2, 2]
    >>> round(float(outs[-1].evidence[0, 0]), 3), float(outs[-1].score[0])
    (0.5, 0.625)
    """

    name = "rate"
    evidence_names = ("rate", "buckets", "span_s")
    params_type = RateParams

    def __init__(self, params: RateParams, n_buckets: int = 12):
        if int(n_buckets) < 2:
            raise ValueError(f"n_buckets must be >= 2, got {n_buckets}")
        self.n_buckets = int(n_buckets)
        super().__init__(params)

    def _state_spec(self) -> StateSpec:
        spec = hysteresis_spec()
        for key, (dtype, per_bucket, init) in BUCKET_STATE.items():
            spec[key] = (dtype, (self.n_buckets,) if per_bucket else (), init)
        spec["rate"] = (np.float64, (), np.nan)
        spec["score"] = (np.float32, (), 0.0)
        return spec

    def _kernels(self):
        return _update_kernel, _block_kernel

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the numba cache) the kernels now, not at the first batch."""
        det = RateDetector(RateParams.defaults(1), n_buckets=2)
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))
        det.run(np.zeros(1), np.zeros((1, 1)))
