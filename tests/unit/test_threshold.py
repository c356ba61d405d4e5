"""The four-colour threshold detector (domain.md R1-R4) as a pure kernel over many channels."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import detectors.threshold as threshold_module
from detectors.threshold import ThresholdDetector, ThresholdParams

NAN = np.nan


def upper(levels, restore, **kw) -> ThresholdDetector:
    p = ThresholdParams.defaults(1)
    p.upper[0], p.upper_restore[0] = levels, restore
    for k, v in kw.items():
        getattr(p, k)[0] = v
    return ThresholdDetector(p)


def lower(levels, restore, **kw) -> ThresholdDetector:
    p = ThresholdParams.defaults(1)
    p.direction[0] = -1
    p.lower[0], p.lower_restore[0] = levels, restore
    for k, v in kw.items():
        getattr(p, k)[0] = v
    return ThresholdDetector(p)


def feed(det: ThresholdDetector, values, t0: float = 0.0, dt: float = 60.0) -> list[int]:
    ch = np.array([0])
    return [int(det.update(ch, t0 + dt * k, np.array([v]), np.array([True])).grade[0])
            for k, v in enumerate(values)]


WL = ([1253, 1254, 1255, 1256], [1252.75, 1253.75, 1254.75, 1255.75])
DEPTH = ([11.0, 10.0, 8.8, 8.0], [11.2, 10.2, 9.0, 8.2])


def test_doctest_example_runs() -> None:
    assert doctest.testmod(threshold_module).failed == 0


def test_upper_and_lower_red() -> None:
    assert feed(upper(*WL), [1256.0]) == [4]  # upper: value >= red raises red at once
    assert feed(lower(*DEPTH), [8.0]) == [4]  # lower: value <= red raises red at once
    assert feed(lower(*DEPTH), [8.01]) == [0]


def test_highest_crossed_level_wins_after_debounce() -> None:
    assert feed(upper(*WL), [1255.5] * 3) == [0, 0, 3]


def test_debounce_samples_and_hold_seconds() -> None:
    assert feed(upper(*WL), [1253.5, 1253.5, 1252.0]) == [0, 0, 0]
    assert feed(upper(*WL), [1253.5] * 3) == [0, 0, 1]
    det = upper(*WL, raise_hold=600.0)
    assert feed(det, [1253.5] * 12) == [0] * 10 + [1, 1]  # 3 samples AND 600 s since the first


def test_oscillation_raises_once_and_does_not_flap() -> None:
    wobble = [1253.05 if k % 2 else 1252.95 for k in range(200)]
    grades = feed(upper(*WL), wobble)
    changes = [g for a, g in zip([0, *grades], grades, strict=False) if g != a]
    assert changes == [1]


def test_methane_alarm_cut_restore_pattern() -> None:
    # coal face: alarm (orange) 1.0 %, power cut (red) 1.5 %, restore below 1.0 %
    det = upper([NAN, NAN, 1.0, 1.5], [NAN, NAN, 0.95, 1.0])
    assert feed(det, [1.2, 1.2, 1.2]) == [0, 0, 3]
    assert feed(det, [1.6], t0=1000) == [4]
    assert feed(det, [1.2] * 5, t0=2000) == [4] * 5  # back to 1.2 %: stays red
    assert feed(det, [0.9] * 3, t0=3000) == [4, 4, 0]  # below 1.0 % for 3 samples: cleared


def test_both_directions_for_oxygen() -> None:
    p = ThresholdParams.defaults(1)
    p.direction[0] = 2
    p.lower[0], p.lower_restore[0] = [20.5, NAN, 20.0, 19.5], [20.7, NAN, 20.2, 19.7]
    p.upper[0], p.upper_restore[0] = [NAN, 23.5, NAN, NAN], [NAN, 23.3, NAN, NAN]
    det = ThresholdDetector(p)
    assert feed(det, [19.4]) == [4]  # deficiency: red
    det = ThresholdDetector(p)
    assert feed(det, [23.6] * 3) == [0, 0, 2]  # enrichment: yellow


def test_invalid_samples_keep_the_grade() -> None:
    det = upper(*WL)
    assert feed(det, [1256.5]) == [4]
    out = det.update(np.array([0]), 100.0, np.array([NAN]), np.array([True]))
    assert out.grade[0] == 4
    out = det.update(np.array([0]), 200.0, np.array([1250.0]), np.array([False]))
    assert out.grade[0] == 4


def test_plausibility_is_a_fault_not_a_grade() -> None:
    det = upper(*WL, plausible_max=1300.0)
    out = det.update(np.array([0]), 0.0, np.array([9999.0]), np.array([True]))
    assert (out.grade[0], out.fault[0]) == (0, 3)


def test_score_points_and_evidence() -> None:
    det = upper(*WL)
    ch = np.array([0])
    scores = [float(det.update(ch, 0.0, np.array([v]), np.array([True])).score[0])
              for v in (1250.0, 1253.0, 1254.0, 1254.5, 1255.0, 1256.0, 1300.0)]
    assert scores == pytest.approx([0.0, 0.25, 0.5, 0.625, 0.75, 1.0, 1.0])
    out = det.update(ch, 1.0, np.array([1256.2]), np.array([True]))
    assert out.evidence[0].tolist() == pytest.approx([1256.0, 1255.75, 4.0])


def test_block_run_equals_row_by_row_updates() -> None:
    rng = np.random.default_rng(3)
    n, m = 6, 300
    p = ThresholdParams.defaults(n)
    p.upper[:] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[:] = [0.8, 1.8, 2.8, 3.8]
    x = np.cumsum(rng.normal(0, 0.3, (m, n)), axis=0) + 1.0
    x[rng.random((m, n)) < 0.05] = NAN
    t = np.arange(m) * 60.0
    block = ThresholdDetector(p).run(t, x)
    live = ThresholdDetector(p)
    idx = np.arange(n)
    for r in range(m):
        o = live.update(idx, t[r], x[r], np.isfinite(x[r]))
        assert np.array_equal(o.grade, block.grade[r])
        assert np.array_equal(o.score, block.score[r])
    assert block.grade.max() > 0


def test_checkpoint_and_restore_continue_exactly() -> None:
    rng = np.random.default_rng(5)
    p = ThresholdParams.defaults(4)
    p.upper[:] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[:] = [0.8, 1.8, 2.8, 3.8]
    x = np.cumsum(rng.normal(0, 0.3, (200, 4)), axis=0) + 1.5
    t = np.arange(200) * 60.0
    whole = ThresholdDetector(p).run(t, x)
    first = ThresholdDetector(p)
    first.run(t[:100], x[:100])
    second = ThresholdDetector(p)
    second.load(first.state())
    rest = second.run(t[100:], x[100:])
    assert np.array_equal(rest.grade, whole.grade[100:])
    with pytest.raises(ValueError, match="grade"):
        ThresholdDetector(ThresholdParams.defaults(3)).load(first.state())


def test_params_validation_names_channel_and_level() -> None:
    p = ThresholdParams.defaults(2)
    p.upper[1] = [1.0, 3.0, 2.0, 4.0]
    p.upper_restore[1] = [0.9, 2.9, 1.9, 3.9]
    with pytest.raises(ValueError, match="channel 1: upper orange"):
        p.validate()
    p.upper[1] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[1] = [0.9, 1.9, 3.1, 3.9]
    with pytest.raises(ValueError, match="channel 1: upper restore level of orange"):
        p.validate()


def test_ten_thousand_channels_with_a_subset_updated() -> None:
    n = 10_000
    p = ThresholdParams.defaults(n)
    p.upper[:] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[:] = [0.9, 1.9, 2.9, 3.9]
    det = ThresholdDetector(p)
    idx = np.arange(0, n, 7)
    for k in range(3):
        out = det.update(idx, 60.0 * k, np.full(idx.size, 4.5), np.ones(idx.size, bool))
    assert (out.grade == 4).all()
    assert det.grade[idx].min() == 4 and det.grade.sum() == 4 * idx.size
