"""Improved tangent angle (Xu Qiang 2009): test vectors, steady creep is quiet, stages."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.tangent_angle import TangentAngleDetector, TangentAngleParams, tangent_angle

HOUR, DAY = 3600.0, 86400.0


@pytest.mark.parametrize(("ratio", "angle"), [(1.0, 45.0), (5.67, 80.0), (11.43, 85.0)])
def test_vectors(ratio: float, angle: float) -> None:
    assert tangent_angle(ratio * 2.0, 2.0) == pytest.approx(angle, abs=0.01)


def gnss(days: float, v_of_day, sigma: float, seed: int = 0):
    """Hourly cumulative displacement (mm) whose velocity (mm/d) is v_of_day(day)."""
    hours = np.arange(int(days * 24))
    v = np.array([v_of_day(h / 24) for h in hours])
    x = np.concatenate([[0.0], np.cumsum(v[:-1] / 24)])
    return HOUR * hours, x + np.random.default_rng(seed).normal(0, sigma, x.size)


def run(det: TangentAngleDetector, t, x):
    return det.run(t, x[:, None])


@pytest.mark.parametrize(("ratio", "angle", "grade"), [
    (1.0, 45.0, 0), (5.67, 80.0, 2), (5.68, 80.01, 3), (11.43, 85.0, 3), (11.44, 85.0, 4)])
def test_vectors_through_the_detector(ratio: float, angle: float, grade: int) -> None:
    p = TangentAngleParams.defaults(1)
    p.v_ref[0] = 2.0
    t, x = gnss(20, lambda d: 2.0 if d < 10 else 2.0 * ratio, sigma=0.0)
    out = run(TangentAngleDetector(p), t, x)
    assert out.evidence[-1, 0, 0] == pytest.approx(angle, abs=0.01)  # 5.67: 79.995 (yellow)
    assert out.evidence[-1, 0].tolist()[1:3] == pytest.approx([2.0, 2.0 * ratio])
    assert int(out.grade[-1, 0]) == grade


def test_steady_noisy_creep_with_a_learned_reference_raises_nothing() -> None:
    t, x = gnss(60, lambda d: 3.0, sigma=1.0, seed=4)  # 3 mm/d, GNSS noise 1 mm
    out = run(TangentAngleDetector(TangentAngleParams.defaults(1)), t, x)
    v_ref = out.evidence[-1, 0, 1]
    assert v_ref == pytest.approx(3.0, rel=0.05)  # learned over the first 7 days
    assert np.isnan(out.evidence[: 7 * 24 - 1, 0, 0]).all()  # nothing graded while learning
    assert not out.grade.any()
    angles = out.evidence[7 * 24:, 0, 0]
    assert abs(np.nanmedian(angles) - 45.0) < 2.0


def test_acceleration_walks_up_the_stages() -> None:
    # velocity doubling every 3 days from 2 mm/d after a quiet fortnight
    t, x = gnss(30, lambda d: 2.0 * 2 ** (max(d - 14, 0) / 3), sigma=1.0, seed=1)
    out = run(TangentAngleDetector(TangentAngleParams.defaults(1)), t, x)
    g = out.grade[:, 0]
    first = [int(np.argmax(g >= k)) / 24 for k in (1, 2, 3, 4)]
    assert not g[: 14 * 24].any()
    assert all(g.max() >= k for k in (1, 2, 3, 4))
    assert first == sorted(first)  # blue, yellow, orange, red in that order
    assert (np.diff(g.astype(int)) >= 0).all()  # no flapping on the way up


def test_noise_floors_keep_a_tiny_reference_quiet() -> None:
    # a quiet point: creep 0.05 mm/d with 1 mm noise; the learned v_ref is floored at what the
    # noise lets one tell from zero (3 standard errors of a 48-hour velocity, about 1 mm/d), so
    # the huge ratio of noises never raises
    t, x = gnss(40, lambda d: 0.05, sigma=1.0, seed=2)
    out = run(TangentAngleDetector(TangentAngleParams.defaults(1)), t, x)
    assert 0.5 < out.evidence[-1, 0, 1] < 2.0
    assert not out.grade.any()


def test_daily_solutions_of_a_creeping_slope_that_accelerates() -> None:
    # daily GNSS (1 mm noise), creeping 0.3 mm/d for three months, then 2 mm/d for two weeks:
    # the 6-hour buckets follow the cadence (a bucket a day, an 8-day window), v_ref is learnt
    # over 30 days, and the acceleration is graded within days
    rng = np.random.default_rng(7)
    days = np.arange(110.0)
    v = np.where(days < 90, 0.3, 2.0)
    x = np.concatenate([[0.0], np.cumsum(v[:-1])]) + rng.normal(0, 0.3, days.size)
    out = run(TangentAngleDetector(TangentAngleParams.defaults(1)), days * 86400.0, x)
    g = out.grade[:, 0]
    assert not g[:90].any()
    assert g[90:100].max() >= 2  # yellow or above within ten days
    assert out.evidence[-1, 0, 1] == pytest.approx(0.3, abs=0.15)  # the learned v_ref


def test_an_earthquake_step_is_taken_out_of_the_series() -> None:
    # steady creep with an abrupt 40 mm offset: the step detector reports it; the angle of
    # the creep stays quiet
    rng = np.random.default_rng(8)
    days = np.arange(120.0)
    x = 0.3 * days + rng.normal(0, 1.0, days.size) - np.where(days >= 80, 40.0, 0.0)
    p = TangentAngleParams.defaults(1)
    p.direction[0] = 2
    out = run(TangentAngleDetector(p), days * 86400.0, x)
    assert not out.grade.any()


def test_parameters_are_checked() -> None:
    p = TangentAngleParams.defaults(2)
    p.angles[1, 0] = 40.0
    p.angle_restore[1, 0] = 38.0
    with pytest.raises(ValueError, match="channel 1: angles must lie between 45"):
        TangentAngleDetector(p)
    p = TangentAngleParams.defaults(2)
    p.v_ref[0] = -1.0
    with pytest.raises(ValueError, match="channel 0: v_ref"):
        TangentAngleDetector(p)
