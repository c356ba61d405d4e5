"""The step detector and the jump logic it shares (detectors/step.py, detectors/jumps.py): an
abrupt new level is a safety event held for a while, a glitch is not, an acceleration is not,
and a quantised gauge's normal one-digit changes are not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.step import StepDetector, StepParams

DAY = 86400.0


def run(x, t, **kw):
    p = StepParams.defaults(1)
    for k, v in kw.items():
        getattr(p, k)[0] = v
    return StepDetector(p).run(np.asarray(t, float), np.asarray(x, float)[:, None])


def gnss(days: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(days) * DAY, np.random.default_rng(seed).normal(0.0, 1.0, days)


def test_an_earthquake_offset_is_one_event_decided_a_sample_later_and_cleared() -> None:
    t, x = gnss(120)
    x[60:] -= 40.0
    out = run(x, t)
    g = out.grade[:, 0]
    assert np.flatnonzero(g).min() == 61  # decided by the sample after the jump
    assert g.max() == 2  # 40 mm against about 1.3 mm of increment noise: yellow (>= 30 scales)
    assert not g[66:].any()  # held a day and three samples, then the new level is normal
    assert out.evidence[61, 0, 0] == pytest.approx(-40.0, abs=3.0)


def test_a_one_day_glitch_is_no_step() -> None:
    t, x = gnss(120, seed=1)
    x[60] += 40.0
    assert not run(x, t).grade.any()


def test_an_acceleration_is_no_step() -> None:
    # a noise-free creep that suddenly moves 11x faster: each increment departs from the old
    # velocity as far as the last did, so the held jump is a ramp, not a chain of steps
    hours = np.arange(20 * 24)
    v = np.where(hours / 24 < 10, 2.0, 22.9) / 24
    x = np.concatenate([[0.0], np.cumsum(v[:-1])])
    assert not run(x, hours * 3600.0).grade.any()


def test_a_gauge_read_in_centimetres_steps_by_a_few_of_them_without_alarm() -> None:
    t = np.arange(0, 20 * DAY, 300.0)  # a pond level every 5 minutes, pumped now and then
    rng = np.random.default_rng(2)
    x = 338.5 + np.round(np.cumsum(rng.choice([-0.01, 0.0, 0.01], t.size, p=[.05, .9, .05])), 2)
    x[3000:] += 0.05  # a pump stops: 5 cm at once, five quanta
    assert not run(x, t).grade.any()
    x[5000:] += 0.5  # half a metre at once is a step
    assert run(x, t).grade[5001, 0] >= 1


def test_size_levels_from_a_design_replace_the_learned_ones() -> None:
    t, x = gnss(120, seed=3)
    x[60:] += 25.0
    out = run(x, t, size_levels=np.array([5.0, 10.0, 20.0, 50.0]), hold_s=0.0)
    assert out.grade.max() == 3  # 25 mm: orange by the design's sizes
    up = run(x, t, direction=-1)  # only a fall is worse here
    assert not up.grade.any()
    assert np.isnan(StepParams.defaults(1).size_levels).all()  # none unless a design gives them


def test_parameters_are_checked() -> None:
    p = StepParams.defaults(2)
    p.z_levels[1] = [10.0, 5.0, np.nan, np.nan]
    with pytest.raises(ValueError, match="channel 1: z_levels: levels must not descend"):
        StepDetector(p)
    p = StepParams.defaults(1)
    p.jump_z[0] = 0.0
    with pytest.raises(ValueError, match="jump_z must be > 0"):
        StepDetector(p)
