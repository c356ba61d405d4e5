"""The detector contract for every kernel detector: block replay equals row-by-row updates,
a checkpoint continues exactly, checkpoints are checked, and inputs are checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from detectors.base import Detector
from detectors.channels import ChannelDetector, Debounce
from detectors.cusum import CusumDetector, CusumParams
from detectors.generic import GenericDetector, GenericParams
from detectors.inverse_velocity import InverseVelocityDetector, InverseVelocityParams
from detectors.rate import RateDetector, RateParams
from detectors.spike import SpikeDetector, SpikeParams
from detectors.stuck import StuckDetector, StuckParams
from detectors.tangent_angle import TangentAngleDetector, TangentAngleParams
from detectors.threshold import ThresholdDetector, ThresholdParams

HOUR = 3600.0


def make_rate(n: int) -> RateDetector:
    p = RateParams.defaults(n)
    p.direction[:] = np.resize([1, -1, 2], n)
    p.bucket_s[:] = 300.0
    p.per_s[:] = HOUR
    p.limits[:] = [0.5, 1.0, 1.5, 2.0]
    p.restore[:] = [0.4, 0.9, 1.4, 1.9]
    p.raise_hold[::2] = 600.0
    p.red_immediate[::3] = False
    return RateDetector(p, n_buckets=6)


def make_tangent_angle(n: int) -> TangentAngleDetector:
    p = TangentAngleParams.defaults(n)
    p.direction[:] = np.resize([1, -1, 2], n)
    p.bucket_s[:] = 600.0
    p.per_s[:] = HOUR
    p.learn_s[:] = HOUR  # v_ref, then the excess envelope: judging from about 2 h on
    p.v_ref[::3] = 2.0
    p.v_floor[:] = 0.1
    p.disp_floor[:] = 0.0
    p.noise_z[:] = 0.0
    p.raise_hold[:] = 0.0
    return TangentAngleDetector(p, n_buckets=4)


def make_inverse_velocity(n: int) -> InverseVelocityDetector:
    p = InverseVelocityParams.defaults(n)
    p.direction[:] = np.resize([1, -1, 2], n)
    p.bucket_s[:] = 300.0
    p.vel_span[:] = 2
    p.per_s[:] = HOUR
    p.v_floor[:] = 0.05
    p.min_r2[:] = 0.3
    p.accel_ratio[:] = 1.0
    p.lead[:] = np.array([8.0, 4.0, 2.0, 1.0]) * HOUR
    p.lead_restore[:] = 1.2 * p.lead
    return InverseVelocityDetector(p, n_buckets=12)


def make_cusum(n: int) -> CusumDetector:
    p = CusumParams.defaults(n)
    p.warmup[:] = 20
    p.tau_s[:] = 1800.0
    p.hold_s[:] = 120.0
    p.safety[::2] = True
    p.grade_level[:] = np.resize([1, 2, 3, 4], n)
    return CusumDetector(p)


def make_spike(n: int) -> SpikeDetector:
    p = SpikeParams.defaults(n)
    p.z_fault[:] = 3.0
    p.safety[::2] = True
    p.max_age_s[:] = 900.0
    p.raise_samples[::3] = 2
    return SpikeDetector(p, window=9)


def make_stuck(n: int) -> StuckDetector:
    p = StuckParams.defaults(n)
    p.period_s[:] = 30.0
    p.periods[:] = 2.0
    p.min_samples[:] = 2
    p.tolerance[::2] = 0.1
    p.plausible_max[::3] = 20.0
    p.max_rate[1::3] = 0.3
    return StuckDetector(p)


def make_generic(n: int) -> GenericDetector:
    p = GenericParams.defaults(n)
    p.warmup_s[:] = 1800.0
    p.tau_s[:] = 1200.0
    p.profile_tau_s[:] = 6 * HOUR
    p.clear_s[:] = 300.0
    p.daily[::2] = False
    p.grade_level[:] = np.resize([1, 2, 3], n)
    return GenericDetector(p)


def make_threshold(n: int) -> ThresholdDetector:
    p = ThresholdParams.defaults(n)
    p.direction[:] = np.resize([1, -1, 2], n)
    up = p.direction != -1
    p.upper[up], p.upper_restore[up] = [2.0, 4.0, 6.0, 8.0], [1.5, 3.5, 5.5, 7.5]
    down = p.direction != 1
    p.lower[down], p.lower_restore[down] = [-2.0, -4.0, np.nan, -8.0], [-1.5, -3.5, np.nan, -7.5]
    p.raise_hold[::2] = 120.0
    p.red_immediate[::3] = False
    p.plausible_max[::4] = 30.0
    return ThresholdDetector(p)


FACTORIES: dict[str, Callable[[int], ChannelDetector]] = {
    "cusum": make_cusum,
    "generic": make_generic,
    "inverse_velocity": make_inverse_velocity,
    "rate": make_rate,
    "spike": make_spike,
    "stuck": make_stuck,
    "tangent_angle": make_tangent_angle,
    "threshold": make_threshold,
}


def series(m: int, n: int, seed: int):
    """Random walks with drift changes, NaN, invalid flags, irregular times, runs of repeats."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.normal(0, 0.3, (m // 50 + 1, n)), 50, axis=0)[:m]
    x = np.cumsum(drift + rng.normal(0, 0.3, (m, n)), axis=0)
    x[rng.random((m, n)) < 0.02] += 25.0  # spikes
    flat = rng.random((m, n)) < 0.3
    for r in range(1, m):  # runs of a repeated value (a slow device, or a stuck one)
        x[r, flat[r]] = x[r - 1, flat[r]]
    x[rng.random((m, n)) < 0.03] = np.nan
    valid = rng.random((m, n)) > 0.03
    t = 1.7e9 + np.cumsum(rng.choice([30.0, 60.0, 61.5, 600.0], m, p=[0.3, 0.4, 0.25, 0.05]))
    return t, x, valid


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


@pytest.fixture(params=sorted(FACTORIES))
def make(request) -> Callable[[int], ChannelDetector]:
    return FACTORIES[request.param]


def test_protocol(make) -> None:
    det = make(3)
    assert isinstance(det, Detector)
    assert det.n_evidence == len(det.evidence_names) > 0


def test_block_run_equals_row_by_row_updates(make) -> None:
    n, m = 9, 600
    t, x, valid = series(m, n, 3)
    block_det = make(n)
    block = block_det.run(t, x, valid)
    live = make(n)
    idx = np.arange(n)
    for r in range(m):
        o = live.update(idx, t[r], x[r], valid[r])
        for name, a, b in zip(o._fields, o, (blk[r] for blk in block), strict=True):
            assert same(a, b), (name, r)
    for key, a in live.state().items():
        assert same(a, block_det.state()[key]), key
    assert ((block.score >= 0) & (block.score <= 1)).all()
    assert block.grade.min() >= 0 and block.grade.max() <= 4
    # the detectors must do something on this data, or the equality above proves little
    assert block.grade.any() or block.fault.any()


def test_checkpoint_and_restore_continue_exactly(make) -> None:
    n, m = 7, 500
    t, x, valid = series(m, n, 5)
    whole = make(n).run(t, x, valid)
    first = make(n)
    first.run(t[:260], x[:260], valid[:260])
    saved = first.state()
    first.run(t[:3] + 1e7, x[:3] * 0 + 99.0)  # state() returned copies, not views
    second = make(n)
    second.load(saved)
    rest = second.run(t[260:], x[260:], valid[260:])
    for a, b in zip(rest, whole, strict=True):
        assert same(a, b[260:])


def test_a_checkpoint_without_the_derived_state_continues_exactly(make) -> None:
    """An older version's checkpoint lacks the caches a newer one keeps (`derived`, e.g. the
    velocity detectors' sorted slopes): it still loads, and the values go on exactly, so an
    upgrade never throws away a window or a learned envelope."""
    n, m = 5, 400
    t, x, valid = series(m, n, 11)
    whole = make(n).run(t, x, valid)
    first = make(n)
    first.run(t[:200], x[:200], valid[:200])
    older = {k: v for k, v in first.state().items() if k not in first.derived}
    second = make(n)
    second.load(older)
    rest = second.run(t[200:], x[200:], valid[200:])
    for a, b in zip(rest, whole, strict=True):
        assert same(a, b[200:])


@pytest.mark.parametrize("name", ["rate", "tangent_angle", "inverse_velocity"])
def test_the_kept_slopes_give_what_recomputing_every_slope_gives(name: str) -> None:
    """The velocity detectors keep what the older buckets alone decide (the sorted pairwise
    slopes, `buckets.theil_sen_window`; the runs' line fits) while only the newest bucket
    changes; a twin that drops it after every sample recomputes everything each time, and every
    output must be the same to the last bit, through spikes, steps, gaps, NaN and repeats."""
    from detectors.buckets import NO_BUCKET

    n, m = 6, 700
    t, x, valid = series(m, n, 13)
    kept, fresh = FACTORIES[name](n), FACTORIES[name](n)
    idx = np.arange(n)
    hits = 0
    for r in range(m):
        a = kept.update(idx, t[r], x[r], valid[r])
        valid_for = next(k for k in kept.derived if k.endswith("_q"))  # the cache's newest bucket
        hits += int((getattr(kept, valid_for) != NO_BUCKET).sum())
        b = fresh.update(idx, t[r], x[r], valid[r])
        getattr(fresh, valid_for)[:] = NO_BUCKET
        for field, u, w in zip(a._fields, a, b, strict=True):
            assert same(u, w), (field, r)
    assert hits > m  # the kept slopes were in use, or the equality proves nothing


def test_update_in_any_channel_order(make) -> None:
    n = 6
    t, x, valid = series(80, n, 7)
    a, b = make(n), make(n)
    order = np.array([4, 1, 5, 0, 3, 2])
    for r in range(80):
        oa = a.update(np.arange(n), t[r], x[r], valid[r])
        ob = b.update(order, t[r], x[r, order], valid[r, order])
        assert same(oa.grade[order], ob.grade) and same(oa.score[order], ob.score)


def test_load_rejects_a_checkpoint_that_does_not_fit(make) -> None:
    det = make(2)
    good = det.state()
    key = next(iter(good))
    with pytest.raises(ValueError, match=repr(key)):
        make(3).load(good)
    with pytest.raises(ValueError, match=f"missing {key!r}"):
        det.load({k: v for k, v in good.items() if k != key})
    with pytest.raises(ValueError, match="unknown key 'extra'"):
        det.load({**good, "extra": np.zeros(1)})


def test_update_rejects_bad_input(make) -> None:
    det = make(1)
    one, ok = np.array([1.0]), np.array([True])
    with pytest.raises(IndexError):
        det.update(np.array([1]), 0.0, one, ok)
    with pytest.raises(ValueError, match="one length"):
        det.update(np.array([0]), 0.0, np.array([1.0, 2.0]), ok)
    with pytest.raises(TypeError):
        det.update(np.array([0.0]), 0.0, one, ok)
    with pytest.raises(ValueError, match="t must be finite"):
        det.update(np.array([0]), np.nan, one, ok)
    with pytest.raises(ValueError, match=r"x must be \[m, 1\]"):
        det.run(np.zeros(2), np.zeros((2, 3)))
    empty = det.update(np.zeros(0, np.int64), 0.0, np.zeros(0), np.zeros(0, bool))
    assert empty.grade.shape == (0,) and empty.evidence.shape == (0, det.n_evidence)


GRADED = (ThresholdParams, RateParams, TangentAngleParams, InverseVelocityParams, SpikeParams)


@pytest.mark.parametrize("params", GRADED, ids=lambda c: c.__name__)
def test_graded_detectors_share_one_debounce_block(params) -> None:
    # one definition: the same field names (the config keys), defaults and checks everywhere
    assert issubclass(params, Debounce)
    names = [f.name for f in dataclasses.fields(params)]
    assert names[:5] == [f.name for f in dataclasses.fields(Debounce)]
    p = params.defaults(3)
    p.validate()
    p.clear_samples[1] = 0
    with pytest.raises(ValueError, match="channel 1: clear_samples 0 must be >= 1"):
        p.validate()
    p.clear_samples[1] = 3
    p.raise_hold[2] = np.nan
    with pytest.raises(ValueError, match="channel 2: raise_hold nan must be a finite number"):
        p.validate()
