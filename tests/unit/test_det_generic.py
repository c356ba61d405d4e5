"""Generic detector: daily cycles are normal, one event per anomaly, self-calibrating threshold."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.generic import GenericDetector, GenericParams

DAY = 86400.0


def starts(grade: np.ndarray) -> np.ndarray:
    g = grade > 0
    return np.flatnonzero(g & ~np.r_[False, g[:-1]])


def daily_series(days: int, seed: int = 0):
    t = np.arange(0, days * DAY, 300.0)
    rng = np.random.default_rng(seed)
    # a pump that runs every afternoon (a square daily cycle) on a sinusoidal temperature swing
    hour = ((t + 8 * 3600) % DAY) / 3600
    x = 20 + 4 * np.sin(2 * np.pi * t / DAY) + 6 * ((hour >= 13) & (hour < 17))
    return t, x + rng.normal(0, 0.3, t.size)


def test_a_daily_cycle_raises_nothing_once_learnt_and_is_needed() -> None:
    t, x = daily_series(14)
    out = GenericDetector(GenericParams.defaults(1)).run(t, x[:, None])
    assert not out.grade[int(3 * DAY / 300):].any()  # after three days: quiet for eleven
    p = GenericParams.defaults(1)
    p.daily[0] = False
    flat = GenericDetector(p).run(t, x[:, None])
    assert len(starts(flat.grade[:, 0])) >= 10  # without the profile: the pump every day


def test_one_event_per_anomaly_however_long() -> None:
    t, x = daily_series(14, seed=1)
    x[(t >= 10 * DAY) & (t < 10 * DAY + 6 * 3600)] += 5.0  # six hours high
    x[(t >= 12 * DAY) & (t < 12 * DAY + 3600)] -= 5.0  # one hour low
    out = GenericDetector(GenericParams.defaults(1)).run(t, x[:, None])
    s = starts(out.grade[:, 0])
    assert [round(t[k] / DAY, 1) for k in s] == [10.0, 12.0]
    assert int(out.evidence[-1, 0, 3]) == 2
    in_first = out.grade[(t >= 10 * DAY + 600) & (t < 10 * DAY + 6 * 3600), 0]
    assert (in_first == 1).mean() > 0.9  # held through the anomaly, not flapping


def test_threshold_calibrates_to_the_channels_own_tails() -> None:
    t = np.arange(0, 4 * DAY, 60.0)
    rng = np.random.default_rng(2)
    gauss = rng.normal(0, 1, t.size)
    heavy = rng.standard_t(2, t.size)  # the same centre, far heavier tails
    p = GenericParams.defaults(2)
    p.daily[:] = False
    out = GenericDetector(p).run(t, np.c_[gauss, heavy])
    thr = out.evidence[-1, :, 1]
    assert thr[1] > 1.5 * thr[0]
    events = [len(starts(out.grade[:, c])) for c in range(2)]
    assert events[0] <= 2 and events[1] <= 8


def test_warm_up_and_invalid_samples() -> None:
    p = GenericParams.defaults(1)
    p.warmup_s[0] = 3600.0
    x = np.r_[np.zeros(30), np.full(10, 100.0)]
    out = GenericDetector(p).run(np.arange(40) * 60.0, x[:, None])
    assert not out.grade.any()  # the jump came during warm-up
    det = GenericDetector(GenericParams.defaults(1))
    before = det.state()
    det.update(np.array([0]), 0.0, np.array([np.nan]), np.array([True]))
    assert all(np.array_equal(a, det.state()[k], equal_nan=True) for k, a in before.items())


def test_parameters_are_checked() -> None:
    p = GenericParams.defaults(2)
    p.q[1] = 1.0
    with pytest.raises(ValueError, match="channel 1: q"):
        GenericDetector(p)
