"""Stuck / implausible sensors: faults, never grades; the device update period, the quantity's
physics and the channel's own habits are respected; a spike is a fault, a step is not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.base import Quality
from detectors.stuck import StuckDetector, StuckParams

HOUR = 3600.0


def run(x, t, **kw):
    p = StuckParams.defaults(1)
    for k, v in kw.items():
        getattr(p, k)[0] = v
    return StuckDetector(p).run(np.asarray(t, float), np.asarray(x, float)[:, None])


def by_period(x, t, **kw):
    """Judged by the device periods alone: the channel's learned habits switched off."""
    return run(x, t, run_factor=np.nan, mean_factor=np.nan, **kw)


def test_unchanged_within_the_device_update_period_is_not_stuck() -> None:
    # GNSS: one solution an hour, polled every minute for two days: 60 identical reads an hour
    t = np.arange(48 * 60) * 60.0
    x = np.floor(t / HOUR) * 0.7
    out = by_period(x, t, period_s=HOUR, periods=2.0)
    assert not out.fault.any()
    assert float(out.evidence[59, 0, 0]) == 59 * 60.0  # unchanged for 59 min: evidence only
    # the same reads judged with a 1-minute device period: stuck within every hour
    assert (by_period(x, t, period_s=60.0).fault == 1).any()


def test_stuck_after_the_periods_and_released_by_a_change() -> None:
    t = np.arange(40) * 60.0
    x = np.r_[np.arange(10.0), np.full(20, 9.0), np.arange(10.0) + 20]
    f = by_period(x, t).fault[:, 0]
    # 9.0 from sample 9; stuck once 6 periods (360 s) have passed: sample 15
    assert np.flatnonzero(f == Quality.SUSPECT).tolist() == list(range(15, 30))


def test_tolerance_treats_a_flicker_as_flat() -> None:
    t = np.arange(30) * 60.0
    x = 4.0 + 0.001 * (np.arange(30) % 2)
    assert not by_period(x, t).fault.any()
    assert (by_period(x, t, tolerance=0.002).fault[:, 0] == 1).sum() == 30 - 6


def test_a_channel_is_judged_by_its_own_flat_runs_and_a_day_before_it_has_shown_them() -> None:
    # a piezometer read in whole logger digits every 15 min: its reading holds for hours
    t = np.arange(0, 12 * 86400, 900.0)
    hold = np.repeat([4.0, 9.0, 3.0, 6.0, 20.0, 5.0, 7.0, 3.0] * 20, 1)  # hours per run
    edges = np.cumsum(hold) * 3600.0
    x = 2900.0 + (np.searchsorted(edges, t, side="right") % 2)
    out = run(x, t, period_s=900.0)
    assert not out.fault.any()  # a 20-hour run among them is this channel's habit, no fault
    after = out.evidence[-1, 0, 2]
    assert after >= 3 * 20 * 3600.0 * 0.9  # about 3x its longest normal run (slowly forgotten)
    # before it has shown 20 runs, a value may hold still for a day
    assert float(run(np.full(40, 1.0), np.arange(40) * 900.0).evidence[-1, 0, 2]) == 86400.0
    # ... and the quantity's physics is a floor on top (a pond level: two days)
    assert float(run(np.full(4, 1.0), [0, 1, 2, 3], min_stuck_s=172800.0).evidence[-1, 0, 2]) \
        == 172800.0


def test_a_spike_is_a_fault_on_two_samples_a_step_is_not() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(60) * 86400.0  # daily GNSS solutions, 1 mm of noise
    x = rng.normal(0.0, 1.0, 60)
    spike = x.copy()
    spike[40] += 40.0
    f = run(spike, t).fault[:, 0]
    # the spike is suspect at once, and its successor, which proves it, too: the alert engine
    # raises a fault on the second suspect sample
    assert np.flatnonzero(f).tolist() == [40, 41]
    step = x.copy()
    step[40:] -= 40.0
    f = run(step, t).fault[:, 0]
    assert np.flatnonzero(f).tolist() == [40]  # held while undecided, then a real movement
    # rain comes in bursts: with jump checks off a downpour is no spike
    assert not run(spike, t, jump_z=np.inf).fault.any()


def test_implausible_values_are_out_of_range_or_suspect() -> None:
    t = np.arange(6) * 60.0
    x = [1.0, 2.0, 500.0, 3.0, np.inf, 40.0]
    f = run(x, t, plausible_min=0.0, plausible_max=100.0, max_rate=0.1).fault[:, 0]
    assert f.tolist() == [0, 0, 3, 0, 3, 1]  # 3 -> 40 in a minute is faster than 0.1 /s
    out = run([1.0, np.nan, 1.0], [0.0, 60.0, 120.0])
    assert out.fault.tolist() == [[0], [0], [0]] and not out.grade.any()


def test_parameters_are_checked() -> None:
    p = StuckParams.defaults(2)
    p.periods[1] = 1.0
    with pytest.raises(ValueError, match="channel 1: periods"):
        StuckDetector(p)
    p = StuckParams.defaults(2)
    p.plausible_min[0], p.plausible_max[0] = 5.0, 1.0
    with pytest.raises(ValueError, match="channel 0: plausible range"):
        StuckDetector(p)
