"""Two-sided CUSUM (Page 1954): delay for a step of known size, one verdict per shift."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.cusum import CusumDetector, CusumParams, expected_delay


def detectors(n: int, **kw) -> CusumDetector:
    p = CusumParams.defaults(n)
    p.warmup[:] = 200  # a well-estimated baseline, as the textbook delay assumes
    p.k[:] = 0.5  # the textbook scheme (k 0.5, h 5)
    p.hold_s[:] = 0.0  # flag the detecting sample only
    for k, v in kw.items():
        getattr(p, k)[:] = v
    return CusumDetector(p)


@pytest.mark.parametrize("delta", [1.5, 2.0, 3.0])
def test_step_is_detected_within_the_theoretical_delay(delta: float) -> None:
    # 400 independent channels at once: N(0, 1), a step of delta sd after sample 300
    n, step, m = 400, 300, 340
    rng = np.random.default_rng(int(delta * 10))
    x = rng.normal(0, 1, (m, n))
    x[step:] += delta
    out = detectors(n).run(np.arange(m, dtype=float), x)
    alarms = out.fault == 1
    clean = ~alarms[200:step].any(axis=0)  # no false alarm before the step
    assert clean.mean() > 0.6
    delay = np.argmax(alarms[step:, clean], axis=0) + 1  # 1 = alarm on the first shifted sample
    assert alarms[step:, clean].any(axis=0).all()
    # h / (delta - k) <= mean delay <= (h + 1.166) / (delta - k) (Siegmund), with 10 % slack
    assert 5.0 / (delta - 0.5) * 0.9 <= delay.mean() <= expected_delay(delta) * 1.1
    assert (out.grade == 0).all()  # a quality verdict by default, never a grade


def test_in_control_false_alarm_rate_is_near_the_design_arl() -> None:
    # k 0.5, h 5: one-sided ARL0 about 465 samples, so about 233 for the two-sided scheme
    n, m = 200, 1200
    x = np.random.default_rng(3).normal(0, 1, (m, n))
    out = detectors(n).run(np.arange(m, dtype=float), x)
    f = out.fault[199:] == 1  # a verdict holds at least one sample period: count its onsets
    alarms = int((f[1:] & ~f[:-1]).sum())
    watched = (m - 200) * n - alarms * 200  # each alarm restarts a 200-sample warm-up
    assert 150 < watched / alarms < 700


def test_a_lasting_step_gives_one_verdict_and_a_new_baseline() -> None:
    x = np.random.default_rng(4).normal(20.0, 0.5, 2000)
    x[1000:] += 3.0  # 6 sd
    det = detectors(1, hold_s=60.0, k=1.0)  # the default scheme: no false alarms in 2000
    out = det.run(np.arange(2000, dtype=float), x[:, None])
    f = out.fault[:, 0] == 1
    raises = np.flatnonzero(f[1:] & ~f[:-1]) + 1
    assert raises.tolist() == [int(np.argmax(f))] and 1000 <= raises[0] <= 1003
    assert f[raises[0]:raises[0] + 61].all() and not f[raises[0] + 62:].any()  # held 60 s
    assert float(out.evidence[-1, 0, 3]) == pytest.approx(23.0, abs=0.2)  # the new baseline
    assert float(out.evidence[raises[0], 0, 2]) == pytest.approx(3.0, abs=0.8)  # shift estimate


def test_slow_drift_is_followed_not_flagged_with_the_default_scheme() -> None:
    t = np.arange(20000, dtype=float) * 60  # two weeks at 1 min
    x = 5.0 + 0.3 * t / t[-1] + np.random.default_rng(5).normal(0, 0.2, t.size)  # 1.5 sd
    p = CusumParams.defaults(1)
    p.tau_s[0] = 3600.0
    out = CusumDetector(p).run(t, x[:, None])
    assert (out.fault == 1).mean() < 0.01


def test_safety_mode_grades_instead() -> None:
    x = np.r_[np.random.default_rng(6).normal(0, 1, 300), np.full(50, 5.0)]
    det = detectors(1, safety=True, grade_level=3, hold_s=10.0)
    out = det.run(np.arange(350, dtype=float), x[:, None])
    assert int(out.grade[:, 0].max()) == 3 and not out.fault.any()


def test_parameters_are_checked() -> None:
    p = CusumParams.defaults(2)
    p.h[1] = 0.0
    with pytest.raises(ValueError, match="channel 1: h must be finite and > 0"):
        CusumDetector(p)
    with pytest.raises(ValueError, match="step of 0.4 sd"):
        expected_delay(0.4)
