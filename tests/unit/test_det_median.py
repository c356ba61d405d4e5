"""The median the bucket detectors and the Hampel filter take (`buckets.median_prefix`): by
selection, yet exactly the value sorting gives, ties and even counts included."""

from __future__ import annotations

import numba
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.buckets import median_prefix, theil_sen


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
