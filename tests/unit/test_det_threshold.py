"""The four-colour threshold detector (docs/requirements.md R1-R4) as a pure kernel over many channels."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.base import GRADE_NAMES, Detector, Quality
from detectors.threshold import BOTH, LOWER, ThresholdDetector, ThresholdParams

NAN = np.nan
WL = ([1253, 1254, 1255, 1256], [1252.75, 1253.75, 1254.75, 1255.75])  # water level, upper
DEPTH = ([11.0, 10.0, 8.8, 8.0], [11.2, 10.2, 9.0, 8.2])  # phreatic depth, lower
CH4 = ([NAN, NAN, 1.0, 1.5], [NAN, NAN, 0.95, 1.0])  # alarm 1.0 %, cut 1.5 %, restore < 1.0 %


def _params(direction: int, levels, restore, **kw) -> ThresholdParams:
    p = ThresholdParams.defaults(1)
    p.direction[0] = direction
    if direction == LOWER:
        p.lower[0], p.lower_restore[0] = levels, restore
    else:
        p.upper[0], p.upper_restore[0] = levels, restore
    for k, v in kw.items():
        getattr(p, k)[0] = v
    return p


def upper(levels, restore, **kw) -> ThresholdDetector:
    return ThresholdDetector(_params(1, levels, restore, **kw))


def lower(levels, restore, **kw) -> ThresholdDetector:
    return ThresholdDetector(_params(LOWER, levels, restore, **kw))


def oxygen() -> ThresholdDetector:
    p = ThresholdParams.defaults(1)
    p.direction[0] = BOTH
    p.lower[0], p.lower_restore[0] = [20.5, NAN, 20.0, 19.5], [20.7, NAN, 20.2, 19.7]
    p.upper[0], p.upper_restore[0] = [NAN, 23.5, NAN, NAN], [NAN, 23.3, NAN, NAN]
    return ThresholdDetector(p)


def step(det: ThresholdDetector, t: float, v: float, ok: bool = True):
    return det.update(np.array([0]), t, np.array([v]), np.array([ok]))


def feed(det: ThresholdDetector, values, t0: float = 0.0, dt: float = 60.0) -> list[int]:
    return [int(step(det, t0 + dt * k, v).grade[0]) for k, v in enumerate(values)]


def random_params(n: int, rng: np.random.Generator) -> ThresholdParams:
    """Mixed directions, debounce settings and plausibility limits."""
    p = ThresholdParams.defaults(n)
    p.direction[:] = rng.choice([1, -1, 2], n)
    up = np.array([1.0, 2.0, 3.0, 4.0])
    lo = np.array([-1.0, -2.0, -3.0, -4.0])
    for i in range(n):
        drop = rng.random(4) < 0.25  # some levels unset
        if p.direction[i] != LOWER:
            p.upper[i] = np.where(drop, NAN, up)
            p.upper_restore[i] = np.where(drop, NAN, up - 0.3)
        if p.direction[i] != 1:
            p.lower[i] = np.where(drop, NAN, lo)
            p.lower_restore[i] = np.where(drop, NAN, lo + 0.3)
    p.raise_samples[:] = rng.integers(1, 5, n)
    p.raise_hold[:] = rng.choice([0.0, 90.0, 300.0], n)
    p.clear_samples[:] = rng.integers(1, 5, n)
    p.clear_hold[:] = rng.choice([0.0, 120.0], n)
    p.red_immediate[:] = rng.random(n) < 0.7
    p.plausible_max[::3] = 5.5
    p.plausible_min[::4] = -5.5
    return p


def random_series(m: int, n: int, rng: np.random.Generator):
    x = np.cumsum(rng.normal(0, 0.4, (m, n)), axis=0)
    x[rng.random((m, n)) < 0.03] = NAN
    x[rng.random((m, n)) < 0.01] = np.inf
    valid = rng.random((m, n)) > 0.03
    t = np.cumsum(rng.choice([30.0, 60.0, 61.5], m))
    return t, x, valid


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


# --- documentation and contract ---------------------------------------------------------------

def test_contract_constants_and_protocol() -> None:
    assert GRADE_NAMES == ("none", "blue", "yellow", "orange", "red")
    assert [int(q) for q in Quality] == [0, 1, 2, 3, 4, 5, 6]  # 6: manual (issue 19)
    det = upper(*WL)
    assert isinstance(det, Detector)
    assert det.n_evidence == len(det.evidence_names) == 3
    out = step(det, 0.0, 1250.0)
    assert (out.score.dtype, out.grade.dtype, out.fault.dtype, out.evidence.dtype) == (
        np.float32, np.int8, np.uint8, np.float32)
    assert out.evidence.shape == (1, 3)


def test_defaults() -> None:
    p = ThresholdParams.defaults(2)
    assert p.raise_samples.tolist() == [3, 3] and p.clear_samples.tolist() == [3, 3]
    assert p.raise_hold.tolist() == [0, 0] and p.clear_hold.tolist() == [0, 0]
    assert p.red_immediate.all() and np.isnan(p.upper).all() and np.isnan(p.plausible_max).all()
    assert feed(ThresholdDetector(p), [1e9, -1e9]) == [0, 0]  # nothing set: never grades


# --- direction and levels (docs/requirements.md R1, R2) ------------------------------------------

def test_upper_raises_red_at_or_above_red() -> None:
    assert feed(upper(*WL), [1256.0]) == [4]
    assert feed(upper(*WL), [1255.99]) == [0]


def test_lower_raises_red_at_or_below_red() -> None:
    assert feed(lower(*DEPTH), [8.0]) == [4]
    assert feed(lower(*DEPTH), [8.01]) == [0]
    assert feed(lower(*DEPTH), [12.0] * 3) == [0, 0, 0]  # deep water table is safe


def test_both_directions_for_oxygen() -> None:
    assert feed(oxygen(), [19.4]) == [4]  # deficiency: red at once
    assert feed(oxygen(), [20.9] * 3) == [0, 0, 0]  # normal air
    assert feed(oxygen(), [23.6] * 3) == [0, 0, 2]  # enrichment: yellow after debounce
    assert feed(oxygen(), [20.4] * 3) == [0, 0, 1]  # mild deficiency: blue
    det = oxygen()
    out = step(det, 0.0, 19.4)
    assert out.evidence[0].tolist() == pytest.approx([19.5, 19.7, 4.0])


def test_highest_crossed_level_wins() -> None:
    det = upper(*WL)
    assert feed(det, [1255.5] * 3) == [0, 0, 3]  # past blue, yellow and orange: orange
    assert det.active[0, 0].tolist() == [True, True, True, False]
    assert feed(lower(*DEPTH), [9.5] * 3) == [0, 0, 2]


# --- debounce (docs/requirements.md R4) ----------------------------------------------------------

def test_debounce_samples() -> None:
    det = upper(*WL)
    outs = [step(det, 60.0 * k, 1254.5) for k in range(3)]  # past yellow (and blue)
    assert [int(o.grade[0]) for o in outs] == [0, 0, 2]  # 2 samples: nothing; the 3rd raises
    assert outs[0].evidence[0, 2] == 2.0  # the instantaneous level is there from the start
    assert np.isnan(outs[0].evidence[0, 0])  # no grade: no threshold in evidence
    assert feed(upper(*WL, raise_samples=1), [1254.5]) == [2]


def test_raise_run_is_reset_only_by_a_sample_back_past_the_restore_level() -> None:
    # blue 1253, restore 1252.75: 1252.5 is back (resets), 1252.9 is in the band (pauses)
    assert feed(upper(*WL), [1253.5, 1253.5, 1252.5, 1253.5, 1253.5]) == [0] * 5
    assert feed(upper(*WL), [1253.5, 1253.5, 1252.9, 1253.5]) == [0, 0, 0, 1]


def test_raise_hold_seconds() -> None:
    det = upper(*WL, raise_hold=600.0)
    assert feed(det, [1253.5] * 12) == [0] * 10 + [1, 1]  # 3 samples AND 600 s since the first
    det = upper(*WL, raise_hold=600.0)
    assert feed(det, [1253.5] * 3, dt=300.0) == [0, 0, 1]  # samples decide when holds are short


def test_red_immediate() -> None:
    assert feed(upper(*WL), [1256.5]) == [4]
    assert feed(upper(*WL, red_immediate=False), [1256.5] * 3) == [0, 0, 4]
    assert feed(upper(*WL, red_immediate=False, raise_samples=2), [1256.5] * 2) == [0, 4]


def test_oscillation_around_a_threshold_raises_once() -> None:
    wobble = [1253.05 if k % 2 else 1252.95 for k in range(200)]  # blue 1253, restore 1252.75
    grades = feed(upper(*WL), wobble)
    changes = [g for a, g in zip([0, *grades], grades, strict=False) if g != a]
    assert changes == [1]
    # after a sustained raise, dips below the threshold (not the restore level) never release
    grades = feed(upper(*WL), [1253.2] * 3 + wobble)
    assert grades[2:] == [1] * (len(grades) - 2)


# --- release (docs/requirements.md R3, R4) -------------------------------------------------------

def test_methane_alarm_cut_restore_pattern() -> None:
    det = upper(*CH4)
    assert feed(det, [1.2, 1.2, 1.2]) == [0, 0, 3]  # alarm: orange after debounce
    assert feed(det, [1.6], t0=1000) == [4]  # cut: red at once
    assert feed(det, [1.2] * 5, t0=2000) == [4] * 5  # back to 1.2 %: stays red
    assert feed(det, [0.9] * 3, t0=3000) == [4, 4, 0]  # below 1.0 % for 3 samples: cleared


def test_release_needs_consecutive_samples_and_clear_hold() -> None:
    det = upper(*CH4)
    feed(det, [1.6])
    # 1.0 is not below the red restore level 1.0: it interrupts the clear run
    assert feed(det, [0.9, 0.9, 1.0, 0.9, 0.9, 0.9], t0=100) == [4, 4, 4, 4, 4, 0]
    det = upper(*CH4, clear_hold=300.0)
    feed(det, [1.6])
    assert feed(det, [0.9] * 7, t0=100) == [4] * 5 + [0, 0]  # 3 samples AND 300 s
    det = upper(*CH4, clear_samples=1)
    feed(det, [1.6])
    assert feed(det, [0.9], t0=100) == [0]


def test_levels_release_one_by_one() -> None:
    det = upper(*WL)
    assert feed(det, [1256.5] * 3) == [4, 4, 4]
    assert feed(det, [1255.5] * 3, t0=1000) == [4, 4, 3]  # below red restore, past orange
    assert feed(det, [1250.0] * 3, t0=2000) == [3, 3, 0]


# --- invalid samples and plausibility ---------------------------------------------------------

def test_invalid_and_nan_samples_keep_grade_score_and_counters() -> None:
    det = upper(*WL)
    first = step(det, 0.0, 1256.5)
    assert first.grade[0] == 4
    for t, v, ok in ((60.0, NAN, True), (120.0, 1250.0, False)):
        out = step(det, t, v, ok)
        assert (out.grade[0], out.fault[0]) == (4, 0)  # a dead sensor never clears an alarm
        assert out.score[0] == first.score[0]
        assert np.isnan(out.evidence[0, 2])
    # counters are neither advanced nor reset: two back samples, gaps, one more back: released
    assert feed(det, [1250.0, 1250.0, NAN, 1250.0], t0=200) == [4, 4, 4, 0]
    # ... and the same for a raise run
    assert feed(upper(*WL), [1253.5, NAN, 1253.5, NAN, 1253.5]) == [0, 0, 0, 0, 1]


def test_out_of_plausible_range_is_a_fault_not_a_grade() -> None:
    det = upper(*WL, plausible_min=1200.0, plausible_max=1300.0)
    for v in (9999.0, 0.0, np.inf, -np.inf):
        out = step(det, 0.0, v)
        assert (int(out.grade[0]), int(out.fault[0])) == (0, int(Quality.OUT_OF_RANGE))
    assert int(det.past_n.sum()) == 0  # the counters did not move
    assert feed(det, [1253.5, 9999.0, 1253.5, 1253.5]) == [0, 0, 0, 1]  # run continues
    out = step(det, 1e4, 1299.0)
    assert (int(out.grade[0]), int(out.fault[0])) == (4, 0)  # the limit itself is plausible
    assert int(step(upper(*WL), 0.0, np.inf).fault[0]) == 3  # inf without limits, too


# --- score and evidence -------------------------------------------------------------------------

def scores(det: ThresholdDetector, values) -> list[float]:
    return [float(step(det, 0.0, v).score[0]) for v in values]


def test_score_upper_points() -> None:
    # 0 at half a level-gap below blue (1252.5), 0.5 blue (the decision, as for every
    # detector), 2/3 yellow, 5/6 orange, 1 red
    got = scores(upper(*WL), [1250.0, 1252.5, 1252.75, 1253.0, 1254.0, 1254.5, 1255.0, 1256.0,
                              1300.0])
    assert got == pytest.approx([0.0, 0.0, 0.25, 0.5, 2 / 3, 0.75, 5 / 6, 1.0, 1.0])


def test_score_lower_points() -> None:
    got = scores(lower(*DEPTH), [20.0, 11.5, 11.25, 11.0, 10.0, 9.4, 8.8, 8.0, 2.0])
    assert got == pytest.approx([0.0, 0.0, 0.25, 0.5, 2 / 3, 0.75, 5 / 6, 1.0, 1.0])


def test_score_across_unset_and_equal_levels() -> None:
    # orange 1.0, red 1.5 only: zero at 0.75, 5/6 at orange, straight line to 1.0 at red
    assert scores(upper(*CH4), [0.5, 0.75, 0.875, 1.0, 1.25, 1.5]) == pytest.approx(
        [0.0, 0.0, 5 / 12, 5 / 6, 11 / 12, 1.0])
    # yellow == orange: at that value the higher level's score
    det = upper([1.0, 2.0, 2.0, 3.0], [0.9, 1.9, 1.9, 2.9])
    assert scores(det, [1.5, 2.0, 2.5]) == pytest.approx([7 / 12, 5 / 6, 11 / 12])
    # one level only (gap = 10 % of it): flat at its score beyond it
    det = upper([NAN, 10.0, NAN, NAN], [NAN, 9.0, NAN, NAN])
    assert scores(det, [9.5, 10.0, 50.0]) == pytest.approx([0.0, 2 / 3, 2 / 3])


def test_score_both_sides_takes_the_larger() -> None:
    got = scores(oxygen(), [20.9, 20.5, 19.0, 23.5, 30.0])
    assert got == pytest.approx([0.0, 0.5, 1.0, 2 / 3, 2 / 3])


def test_evidence_names_the_level_of_the_grade() -> None:
    det = upper(*CH4)
    feed(det, [1.2] * 3)
    out = step(det, 500.0, 1.2)
    assert out.evidence[0].tolist() == pytest.approx([1.0, 0.95, 3.0])
    out = step(det, 600.0, 1.6)
    assert out.evidence[0].tolist() == pytest.approx([1.5, 1.0, 4.0])
    out = step(det, 700.0, 1.2)  # still red: red's levels, instantaneous level orange
    assert out.evidence[0].tolist() == pytest.approx([1.5, 1.0, 3.0])


# --- block replay and checkpoints -------------------------------------------------------------

def test_block_run_equals_row_by_row_updates() -> None:
    rng = np.random.default_rng(3)
    n, m = 24, 400
    p = random_params(n, rng)
    t, x, valid = random_series(m, n, rng)
    block_det = ThresholdDetector(p)
    block = block_det.run(t, x, valid)
    live = ThresholdDetector(p)
    idx = np.arange(n)
    for r in range(m):
        o = live.update(idx, t[r], x[r], valid[r])
        for name, a, b in zip(o._fields, o, (blk[r] for blk in block), strict=True):
            assert same(a, b), (name, r)
    for name, a in live.state().items():
        assert same(a, block_det.state()[name]), name
    assert set(np.unique(block.grade)) >= {0, 1, 2, 3, 4}
    assert set(np.unique(block.fault)) == {0, 3}
    assert same(ThresholdDetector(p).run(t, x).grade,
                ThresholdDetector(p).run(t, x, np.ones_like(valid)).grade)


def test_checkpoint_and_restore_continue_exactly() -> None:
    rng = np.random.default_rng(5)
    n, m = 12, 300
    p = random_params(n, rng)
    t, x, valid = random_series(m, n, rng)
    whole = ThresholdDetector(p).run(t, x, valid)
    first = ThresholdDetector(p)
    first.run(t[:150], x[:150], valid[:150])
    saved = first.state()
    first.run(t[:5] + 1e6, x[:5] * 0 + 99.0)  # state() returned copies, not views
    second = ThresholdDetector(p)
    second.load(saved)
    rest = second.run(t[150:], x[150:], valid[150:])
    for a, b in zip(rest, whole, strict=True):
        assert same(a, b[150:])
    assert whole.grade[150:].max() > 0


def test_load_rejects_a_checkpoint_that_does_not_fit() -> None:
    det = upper(*WL)
    good = det.state()
    with pytest.raises(ValueError, match="'grade'"):
        ThresholdDetector(ThresholdParams.defaults(3)).load(good)  # another channel count
    with pytest.raises(ValueError, match="missing 'back_t0'"):
        det.load({k: v for k, v in good.items() if k != "back_t0"})
    with pytest.raises(ValueError, match="unknown key 'extra'"):
        det.load({**good, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match="'past_n'.*int64"):
        det.load({**good, "past_n": good["past_n"].astype(np.int64)})


def test_load_releases_levels_the_current_params_lack() -> None:
    det = upper(*WL)
    feed(det, [1256.5] * 3)
    fewer = ThresholdDetector(_params(1, [1253, 1254, NAN, NAN], [1252.75, 1253.75, NAN, NAN]))
    fewer.load(det.state())
    assert fewer.grade[0] == 2  # orange and red are gone; without this red would never clear
    assert feed(fewer, [1250.0] * 3) == [2, 2, 0]


# --- parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.upper.__setitem__(1, [1.0, 3.0, 2.0, 4.0]), "channel 1: upper orange 2"),
    (lambda p: p.upper_restore.__setitem__((1, 2), 3.1), "channel 1: upper restore level of orange"),
    (lambda p: p.upper_restore.__setitem__((1, 0), NAN), "channel 1: upper restore level of blue"),
    (lambda p: p.upper.__setitem__((1, 3), np.inf), "channel 1: upper red inf"),
    (lambda p: p.direction.__setitem__(1, 0), "channel 1: direction 0"),
    (lambda p: p.direction.__setitem__(1, -1), "channel 1: upper blue is set but the direction"),
    (lambda p: p.raise_samples.__setitem__(1, 0), "channel 1: raise_samples 0"),
    (lambda p: p.clear_hold.__setitem__(1, NAN), "channel 1: clear_hold"),
    (lambda p: p.raise_hold.__setitem__(1, -5.0), "channel 1: raise_hold"),
    (lambda p: (p.plausible_min.__setitem__(1, 9.0), p.plausible_max.__setitem__(1, 1.0)),
     "channel 1: plausible range"),
])
def test_upper_params_validation_names_channel_and_level(edit, message) -> None:
    p = ThresholdParams.defaults(3)
    p.upper[:] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[:] = [0.9, 1.9, 2.9, 3.9]
    p.validate()
    edit(p)
    with pytest.raises(ValueError, match=message):
        p.validate()
    with pytest.raises(ValueError, match=message):
        ThresholdDetector(p)


def test_lower_params_validation_names_channel_and_level() -> None:
    p = ThresholdParams.defaults(4)
    p.direction[:] = LOWER
    p.lower[:], p.lower_restore[:] = DEPTH
    p.validate()
    p.lower[2] = [11.0, 12.0, NAN, 8.0]
    with pytest.raises(ValueError, match="channel 2: lower yellow 12 is out of order against blue"):
        p.validate()
    p.lower[2], p.lower_restore[2] = DEPTH
    p.lower_restore[3, 3] = 7.9
    with pytest.raises(ValueError, match="channel 3: lower restore level of red"):
        p.validate()
    p = ThresholdParams.defaults(2)
    p.upper = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"ThresholdParams.upper: shape \(2, 3\)"):
        p.validate()


def test_set_params_keeps_state_and_releases_removed_levels() -> None:
    det = upper(*WL)
    feed(det, [1255.5] * 3)
    assert det.grade[0] == 3
    det.set_params(_params(1, [1253, 1254, 1255.2, 1257], [1252.75, 1253.75, 1255.0, 1256.5]))
    assert feed(det, [1255.1], t0=1000) == [3]  # kept: in the new orange band
    det.set_params(_params(1, [1253, NAN, NAN, 1257], [1252.75, NAN, NAN, 1256.5]))
    assert det.grade[0] == 1
    with pytest.raises(ValueError, match="2 channels"):
        det.set_params(ThresholdParams.defaults(2))


def test_seed_grades_holds_until_restored() -> None:
    p = ThresholdParams.defaults(3)
    p.upper[:], p.upper_restore[:] = WL
    p.upper[2], p.upper_restore[2] = CH4
    det = ThresholdDetector(p)
    feed(det, [1250.0] * 2, t0=-500.0)  # channel 0 was already back before the crash
    det.seed_grades(np.array([0, 2]), np.array([3, 2]))
    assert det.grade.tolist() == [3, 0, 0]  # channel 2 has no blue or yellow to hold
    ch = np.array([0, 1])
    out = det.update(ch, 0.0, np.array([1250.0, 1250.0]), np.ones(2, bool))
    assert out.grade.tolist() == [3, 0]  # a full clear run counts from the seed
    out = det.update(ch, 30.0, np.array([1254.9, 1250.0]), np.ones(2, bool))
    assert out.grade.tolist() == [3, 0]  # in orange's band: held
    for k in range(3):
        out = det.update(ch, 60.0 * (k + 1), np.array([1250.0, 1250.0]), np.ones(2, bool))
    assert out.grade.tolist() == [0, 0]


# --- many channels ---------------------------------------------------------------------------

def test_ten_thousand_channels_with_a_subset_updated() -> None:
    n = 10_000
    p = ThresholdParams.defaults(n)
    p.upper[:] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[:] = [0.9, 1.9, 2.9, 3.9]
    det = ThresholdDetector(p)
    rng = np.random.default_rng(0)
    idx = rng.permutation(np.arange(0, n, 7))  # any order
    vals = np.where(idx % 2 == 0, 4.5, 2.5)
    for k in range(3):
        out = det.update(idx, 60.0 * k, vals, np.ones(idx.size, bool))
    assert out.grade.tolist() == np.where(idx % 2 == 0, 4, 2).tolist()  # in idx order
    untouched = np.setdiff1d(np.arange(n), idx)
    assert not det.grade[untouched].any() and not det.past_n[untouched].any()


def test_update_rejects_bad_input() -> None:
    det = upper(*WL)
    with pytest.raises(IndexError):
        det.update(np.array([1]), 0.0, np.array([1.0]), np.array([True]))
    with pytest.raises(IndexError):
        det.update(np.array([-1]), 0.0, np.array([1.0]), np.array([True]))
    with pytest.raises(ValueError, match="one length"):
        det.update(np.array([0]), 0.0, np.array([1.0, 2.0]), np.array([True]))
    with pytest.raises(TypeError):
        det.update(np.array([0.0]), 0.0, np.array([1.0]), np.array([True]))
    with pytest.raises(ValueError, match="t must be finite"):
        det.update(np.array([0]), NAN, np.array([1.0]), np.array([True]))
    with pytest.raises(ValueError, match=r"x must be \[m, 1\]"):
        det.run(np.zeros(2), np.zeros((2, 3)))
    empty = det.update(np.zeros(0, np.int64), 0.0, np.zeros(0), np.zeros(0, bool))
    assert empty.grade.shape == (0,) and empty.evidence.shape == (0, 3)
