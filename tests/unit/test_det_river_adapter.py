"""river HalfSpaceTrees adapter: lazy import, same contract, exact checkpoints."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from detectors.river_adapter import RiverHalfSpaceTrees, RiverParams


def test_importing_detectors_does_not_import_river() -> None:
    code = ("import sys, detectors.river_adapter, detectors.generic, detectors.rate; "
            "print('river' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def series(m: int = 400):
    rng = np.random.default_rng(3)
    base = np.sin(np.arange(m) / 15)
    x = np.c_[base, 2 * base, -base] + rng.normal(0, 0.05, (m, 3))
    x[300:330, 2] = base[300:330]
    x[rng.random((m, 3)) < 0.02] = np.nan
    return np.arange(m, dtype=float), x


def params() -> RiverParams:
    return RiverParams(3, window_size=50, warmup=100, q=0.95, raise_samples=2)


def test_block_equals_updates_and_checkpoint_continues_exactly() -> None:
    t, x = series()
    whole = RiverHalfSpaceTrees(params()).run(t, x)
    live = RiverHalfSpaceTrees(params())
    for r in range(len(t)):
        o = live.update(np.arange(3), t[r], x[r], np.ones(3, bool))
        assert np.array_equal(o.grade, whole.grade[r]) and np.array_equal(o.score, whole.score[r])
    first = RiverHalfSpaceTrees(params())
    first.run(t[:200], x[:200])
    second = RiverHalfSpaceTrees(params())
    second.load(first.state())
    rest = second.run(t[200:], x[200:])
    assert np.array_equal(rest.grade, whole.grade[200:])
    assert np.array_equal(rest.score, whole.score[200:])
    assert whole.grade[300:340].any()


def test_bad_input_and_params() -> None:
    det = RiverHalfSpaceTrees(params())
    with pytest.raises(IndexError):
        det.update(np.array([3]), 0.0, np.array([1.0]), np.array([True]))
    with pytest.raises(ValueError, match="missing 'model'"):
        det.load({"last": np.zeros(3)})
    with pytest.raises(ValueError, match="q must be"):
        RiverHalfSpaceTrees(RiverParams(2, q=1.0))
