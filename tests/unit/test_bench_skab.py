"""The NAB-style scorer (benchmarks/nab.py, used by the SKAB and real-data benchmarks) on
hand-made alarms (pure logic, no data)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nab import nab_counts, nab_scores, nab_sweep

T = np.arange(0.0, 600.0)
CP = (T == 100.0) | (T == 400.0)  # two changepoints, each with a 60 s window to its right


def _alarm(*spans: tuple[int, int]) -> np.ndarray:
    a = np.zeros(T.size, dtype=bool)
    for lo, hi in spans:
        a[lo:hi] = True
    return a


def test_never_alarming_scores_zero_and_an_instant_detector_nearly_100() -> None:
    assert nab_scores([nab_counts(T, CP, _alarm())]) == {"standard": 0.0, "low_fp": 0.0,
                                                          "low_fn": 0.0}
    best = nab_scores([nab_counts(T, CP, _alarm((100, 120), (400, 420)))])
    assert best["standard"] == pytest.approx(100 * (1 + (2 / (1 + np.exp(-5)) - 1)) / 2, abs=0.01)


def test_late_detection_earns_less_and_false_alarms_cost_by_profile() -> None:
    early = nab_scores([nab_counts(T, CP, _alarm((105, 110)))])
    late = nab_scores([nab_counts(T, CP, _alarm((155, 158)))])
    assert early["standard"] > late["standard"] > 0
    noisy = nab_counts(T, CP, _alarm((105, 110), (20, 22), (300, 301)))
    assert noisy["outside"] == 2
    scores = nab_scores([noisy])
    assert scores["low_fp"] < scores["standard"]  # a false alarm costs twice as much
    missed_one = nab_scores([nab_counts(T, CP, _alarm((105, 110)))])
    w = 2 / (1 + np.exp(5 * (105 - 160) / 60)) - 1
    # normalised between "never alarms" (-2 misses) and perfect: a miss weighs 2 under low-FN
    assert missed_one["standard"] == pytest.approx(100 * (w - 1 + 2) / 4, abs=0.01)
    assert missed_one["low_fn"] == pytest.approx(100 * (w - 2 + 4) / 6, abs=0.01)


def test_the_sweep_finds_the_threshold_that_separates_events_from_noise() -> None:
    rng = np.random.default_rng(1)
    score = rng.uniform(0.0, 0.4, T.size)
    score[100:110] = 0.9  # both changepoints answered at once, above all the noise
    score[400:410] = 0.8
    best = nab_sweep([(T, CP, score)], window_s=60.0)
    perfect = nab_scores([nab_counts(T, CP, score >= 0.8)])
    assert best["standard"]["score"] == perfect["standard"]
    assert 0.4 < best["standard"]["threshold"] <= 0.8
    never = nab_sweep([(T, CP, np.zeros(T.size))], window_s=60.0)  # all-zero: never alarms
    assert {v["score"] for v in never.values()} == {0.0}
