"""Rate-of-change detector: robust slope over bucketed windows, graded limits, hysteresis."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.rate import EITHER, FALL, RateDetector, RateParams

HOUR, DAY = 3600.0, 86400.0


def detector(limits=(0.2, 0.4, 0.6, 0.8), direction=1, n_buckets=6, **kw) -> RateDetector:
    p = RateParams.defaults(1)
    p.direction[0] = direction
    p.bucket_s[0] = HOUR
    p.limits[0] = limits
    p.restore[0] = np.asarray(limits) - 0.05
    for k, v in kw.items():
        getattr(p, k)[0] = v
    return RateDetector(p, n_buckets=n_buckets)


def feed(det: RateDetector, t, x):
    ch, ok = np.array([0]), np.array([True])
    return [det.update(ch, float(a), np.array([float(b)]), ok) for a, b in zip(t, x, strict=True)]


@pytest.mark.parametrize(("per_day", "grade"), [(0.1, 0), (0.3, 1), (0.5, 2), (0.7, 3), (0.9, 4)])
def test_graded_limits_on_a_noisy_rise(per_day: float, grade: int) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(0, 2 * DAY, 600.0)
    x = 1250.0 + per_day * t / DAY + rng.normal(0, 0.002, t.size)
    outs = feed(detector(), t, x)
    assert int(outs[-1].grade[0]) == grade
    assert float(outs[-1].evidence[0, 0]) == pytest.approx(per_day, abs=0.03)
    assert float(outs[-1].evidence[0, 1]) == 6  # all six buckets of the window


def test_spikes_and_irregular_sampling_do_not_move_the_robust_slope() -> None:
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, DAY, 200))  # irregular
    x = 10.0 + 0.3 * t / DAY
    x[::25] += 5.0  # a spike in some buckets
    outs = feed(detector(), t, x)
    assert float(outs[-1].evidence[0, 0]) == pytest.approx(0.3, abs=0.02)
    assert int(outs[-1].grade[0]) == 1


def test_phreatic_rise_is_a_falling_depth() -> None:
    t = np.arange(0, DAY, 900.0)
    outs = feed(detector(direction=FALL), t, 12.0 - 0.5 * t / DAY)
    assert float(outs[-1].evidence[0, 0]) == pytest.approx(-0.5)
    assert int(outs[-1].grade[0]) == 2
    assert int(feed(detector(direction=EITHER), t, 12.0 - 0.5 * t / DAY)[-1].grade[0]) == 2
    assert int(feed(detector(), t, 12.0 - 0.5 * t / DAY)[-1].grade[0]) == 0


def test_hysteresis_one_alert_for_an_oscillating_rate() -> None:
    # the rate swings between 0.18 and 0.22 m/d around blue 0.2 (restore 0.15): one raise only
    det = detector(n_buckets=4)
    t = np.arange(0, 10 * DAY, 600.0)
    rate = 0.2 + 0.02 * np.sign(np.sin(2 * np.pi * t / (0.5 * DAY)))
    x = np.concatenate([[0.0], np.cumsum(rate[:-1] * np.diff(t) / DAY)])
    grades = [int(o.grade[0]) for o in feed(det, t, x)]
    changes = [g for a, g in zip([0, *grades], grades, strict=False) if g != a]
    assert changes == [1]


def test_window_gap_and_invalid_samples_hold_the_grade() -> None:
    det = detector()
    t = np.arange(0, DAY, 600.0)
    outs = feed(det, t, 0.9 * t / DAY)
    assert int(outs[-1].grade[0]) == 4
    out = det.update(np.array([0]), DAY, np.array([np.nan]), np.array([True]))
    assert int(out.grade[0]) == 4 and np.isnan(out.evidence[0, 1])
    # after a day without data the window holds one bucket: no rate, nothing released
    out = feed(det, [3 * DAY], [0.0])[0]
    assert int(out.grade[0]) == 4 and float(out.evidence[0, 1]) == 1
    # a sample older than the window is ignored
    out = feed(det, [DAY], [50.0])[0]
    assert np.isnan(out.evidence[0, 1])


def test_parameters_are_checked() -> None:
    p = RateParams.defaults(2)
    p.limits[1] = [1.0, 0.5, np.nan, np.nan]
    p.restore[1] = [0.9, 0.4, np.nan, np.nan]
    with pytest.raises(ValueError, match="channel 1: limits: levels must not descend"):
        RateDetector(p)
    p = RateParams.defaults(2)
    p.bucket_s[0] = 0.0
    with pytest.raises(ValueError, match="channel 0: bucket_s"):
        RateDetector(p)
    with pytest.raises(ValueError, match="n_buckets"):
        RateDetector(RateParams.defaults(1), n_buckets=1)
