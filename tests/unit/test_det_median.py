"""The median the bucket detectors and the Hampel filter take (`buckets.median_prefix`): by
selection, yet exactly the value sorting gives, ties and even counts included; and the window's
Theil-Sen slope kept beside the older buckets' sorted slopes (`buckets.theil_sen_window`), the
same value to the last bit as recomputing it."""

from __future__ import annotations

import numba
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.buckets import NO_BUCKET, kth_of_two, median_prefix, theil_sen, theil_sen_window


@numba.njit(cache=True)
def _median(a, k):
    return median_prefix(a, k)


@numba.njit(cache=True)
def _theil_sen(tm, xm, k, pairs):
    return theil_sen(tm, xm, k, pairs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1.0, -2.5]),
                min_size=1, max_size=300))
def test_median_prefix_is_the_sorted_median(values: list[float]) -> None:
    a = np.array(values + [1e300] * 7)  # what lies past k is never looked at
    k = len(values)
    assert _median(a, k) == np.median(np.array(values))
    assert sorted(a[:k].tolist()) == sorted(values)  # reordered, never changed


def test_median_of_nothing_is_nan_and_theil_sen_needs_two_points() -> None:
    assert np.isnan(_median(np.zeros(3), 0))
    pairs = np.empty(1)
    assert np.isnan(_theil_sen(np.array([0.0]), np.array([1.0]), 1, pairs))


def test_theil_sen_ignores_one_bad_bucket() -> None:
    tm = np.arange(24.0)
    xm = 2.0 * tm + 1.0
    xm[7] = 500.0  # a bucket a spike made
    pairs = np.empty(24 * 23 // 2)
    assert _theil_sen(tm, xm, 24, pairs) == 2.0


@numba.njit(cache=True)
def _kth(a, na, b, nb, k):
    return kth_of_two(a, na, b, nb, k)


@numba.njit(cache=True)
def _window(tm, xm, k, pairs, newest_only, q, n_newest, ts_old, ts_n, ts_q):
    return theil_sen_window(0, tm, xm, k, pairs, newest_only, q, n_newest, ts_old, ts_n, ts_q)


values = st.floats(-1e3, 1e3, allow_nan=False) | st.sampled_from([0.0, 1.0, -2.5])


@settings(max_examples=300, deadline=None)
@given(st.lists(values, max_size=40), st.lists(values, max_size=40), st.data())
def test_kth_of_two_sorted_sets_is_the_kth_of_their_union(a: list[float], b: list[float],
                                                          data) -> None:
    if not a and not b:
        return
    union = sorted(a + b)
    k = data.draw(st.integers(0, len(union) - 1))
    sa, sb = np.array(sorted(a) + [7e300]), np.array(sorted(b) + [7e300])
    assert _kth(sa, len(a), sb, len(b), k) == union[k]


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 24), st.lists(values, min_size=24, max_size=24),
       st.lists(st.tuples(st.floats(0.01, 0.99), values), min_size=1, max_size=12))
def test_the_window_slope_is_theil_sens_while_the_newest_bucket_fills(
        k: int, means: list[float], newest: list[tuple[float, float]]) -> None:
    """Bucket u's mean time is u + a fraction; the newest bucket's mean moves with each sample."""
    nb = 24
    tm = np.arange(k, dtype=float) + 0.5
    xm = np.array(means[:k])
    pairs = np.empty(nb * (nb - 1) // 2 + 1)
    ts_old = np.full((1, nb * (nb - 1) // 2), np.nan)
    ts_n, ts_q = np.zeros(1, np.int32), np.full(1, NO_BUCKET, np.int64)
    for count, (frac, x) in enumerate(newest, start=1):
        tm[k - 1], xm[k - 1] = k - 1 + frac, x
        want = _theil_sen(tm, xm, k, np.empty_like(pairs))
        got = _window(tm, xm, k, pairs, True, 99, count, ts_old, ts_n, ts_q)
        assert got == want or (np.isnan(got) and np.isnan(want))
        assert ts_q[0] == (99 if count >= 2 else NO_BUCKET)  # kept from the second sample on
    # another bucket touched, or a new newest bucket: recomputed in full, the cache dropped
    assert _window(tm, xm, k, pairs, False, 99, 5, ts_old, ts_n, ts_q) == \
        _theil_sen(tm, xm, k, np.empty_like(pairs))
    assert ts_q[0] == NO_BUCKET
