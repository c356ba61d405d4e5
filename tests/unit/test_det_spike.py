"""Spike detector (Hampel): lone spikes are suspect samples, quantised signals are not spikes."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.spike import SpikeDetector, SpikeParams


def run(x, t=None, **kw):
    p = SpikeParams.defaults(1)
    for k, v in kw.items():
        getattr(p, k)[0] = v
    t = np.arange(len(x), dtype=float) * 10 if t is None else t
    return SpikeDetector(p).run(t, np.asarray(x, float)[:, None])


def test_spikes_in_heavy_noise_are_flagged_and_only_they() -> None:
    rng = np.random.default_rng(1)
    x = 50.0 + rng.normal(0, 1.0, 2000)
    spikes = rng.choice(np.arange(20, 2000), 20, replace=False)
    x[spikes] += rng.choice([-1, 1], 20) * 15.0
    out = run(x)
    flagged = set(np.flatnonzero(out.fault[:, 0] == 1).tolist())
    assert set(spikes.tolist()) <= flagged
    # a MAD of 15 samples is itself noisy, so z has heavier tails than the noise: rare, not none
    assert len(flagged - set(spikes.tolist())) <= 10
    assert not out.grade.any()


def test_quantised_flat_signal_needs_the_resolution_as_scale_floor() -> None:
    x = np.r_[np.full(30, 12.3), 12.4, np.full(10, 12.3)]  # one step of one LSB (0.1)
    assert run(x).fault[30, 0] == 1  # without a floor the MAD is 0: any change is a spike
    assert not run(x, min_scale=0.1).fault.any()


def test_a_step_is_flagged_for_at_most_half_a_window() -> None:
    x = np.r_[np.zeros(40), np.full(40, 10.0)] + 0.01 * np.sin(np.arange(80))
    f = run(x).fault[:, 0] == 1
    assert f[40] and f.sum() <= 8  # the median of 15 moves after 8 new samples


def test_old_samples_leave_the_reference() -> None:
    t = np.r_[np.arange(20) * 10.0, 10_000.0 + np.arange(3) * 10]  # a gap longer than 1 h
    out = run(np.r_[np.zeros(20), [40.0, 40.0, 40.0]], t=t)
    assert not out.fault.any() and np.isnan(out.evidence[-3:, 0, 2]).all()


def test_safety_mode_grades_with_debounce() -> None:
    x = np.r_[np.sin(np.arange(30)), 30.0]
    out = run(x, safety=True)
    assert int(out.grade[-1, 0]) == 4 and not out.fault.any()
    assert out.score[-1, 0] == pytest.approx(1.0)


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="window"):
        SpikeDetector(SpikeParams.defaults(1), window=2)
    p = SpikeParams.defaults(2)
    p.min_samples[1] = 2
    with pytest.raises(ValueError, match="channel 1: min_samples"):
        SpikeDetector(p)
