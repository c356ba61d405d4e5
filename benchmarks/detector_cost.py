"""Cost of each detector kernel per channel-sample, against river's HalfSpaceTrees.

    python -m benchmarks.detector_cost [--quick]

For 1, 100 and 10 000 channels: nanoseconds per channel-sample of the live path (`update` with
every channel, one call per time step, Python overhead included) and of block replay (`run`);
river's HalfSpaceTrees (score_one + learn_one, one model per channel, MinMaxScaler in front) on
the same values, in the same run, as a ratio to each kernel's block cost at 10 000 channels; and
the state memory of each detector at 10 000 channels (what a checkpoint holds). Then the full
default detector set of a point of some quantities (`detectors.registry`: every point also runs
`stuck`), summed from the same run: at 100 channels (about a device's batch, the live path's
call overhead included) and at 10 000 (the kernels' own cost). Timing starts after 7.6 days of
10-minute samples have filled every window, so each sample of the bucket detectors recomputes a
full window, as in service; both kernels are compiled (or loaded from the numba cache) before
timing. Then the bucket detectors at one sample a second into 10-minute buckets (100 channels,
block replay, after 25 hours have filled the windows and warmed the jump checks): the cadence at
which their cost counts, where most samples move only the newest bucket
(`detectors.buckets.theil_sen_window`). Prints a table, writes results/detector_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from detectors.cusum import CusumDetector, CusumParams
from detectors.generic import GenericDetector, GenericParams
from detectors.inverse_velocity import InverseVelocityDetector, InverseVelocityParams
from detectors.rate import RateDetector, RateParams
from detectors.registry import detectors_for
from detectors.spike import SpikeDetector, SpikeParams
from detectors.step import StepDetector, StepParams
from detectors.stuck import StuckDetector, StuckParams
from detectors.tangent_angle import TangentAngleDetector, TangentAngleParams
from detectors.threshold import ThresholdDetector, ThresholdParams

CHANNELS = (1, 100, 10_000)
# quantities whose default set is printed, and the target for a full set (issue 18)
SETS = ("generic", "ch4", "phreatic_depth", "water_level", "gnss_disp")
SET_TARGET_NS = 50.0
OUT = Path(__file__).parent / "results" / "detector_cost.json"


def _threshold(n: int) -> ThresholdDetector:
    p = ThresholdParams.defaults(n)
    p.upper[:] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[:] = [0.8, 1.8, 2.8, 3.8]
    return ThresholdDetector(p)


def _rate(n: int) -> RateDetector:
    p = RateParams.defaults(n)
    p.bucket_s[:] = 600.0
    p.limits[:] = [1.0, 2.0, 3.0, 4.0]
    p.restore[:] = [0.8, 1.8, 2.8, 3.8]
    return RateDetector(p)


FACTORIES: dict[str, Callable[[int], object]] = {
    "threshold": _threshold,
    "rate": _rate,
    "tangent_angle": lambda n: TangentAngleDetector(TangentAngleParams.defaults(n)),
    "inverse_velocity": lambda n: InverseVelocityDetector(InverseVelocityParams.defaults(n)),
    "spike": lambda n: SpikeDetector(SpikeParams.defaults(n)),
    "cusum": lambda n: CusumDetector(CusumParams.defaults(n)),
    "step": lambda n: StepDetector(StepParams.defaults(n)),
    "stuck": lambda n: StuckDetector(StuckParams.defaults(n)),
    "generic": lambda n: GenericDetector(GenericParams.defaults(n)),
}


def data(m: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """m steps of n random walks, one step every 10 minutes."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0, 0.1, (m, n)), axis=0)
    return 1.7e9 + 600.0 * np.arange(m), x


def state_bytes(det: object) -> int:
    return sum(a.nbytes for a in det.state().values())  # type: ignore[attr-defined]


def time_detector(make: Callable[[int], object], n: int, budget: float, history: int) -> dict:
    """Both paths start from the same state after `history` steps, so the bucket windows are as
    full as in service (an empty window is cheaper and would flatter the kernels)."""
    t, x = data(history, n)
    det = make(n)
    det.run(t, x)  # type: ignore[attr-defined]  # also compiles / loads from the numba cache
    filled = det.state()  # type: ignore[attr-defined]
    m_block = max(50, int(budget / n))
    t, x = data(m_block, n, seed=1)
    t += history * 600.0
    start = time.perf_counter()
    det.run(t, x)  # type: ignore[attr-defined]
    block = (time.perf_counter() - start) / (m_block * n) * 1e9
    m_live = max(20, min(2000, int(budget / 10 / n)))
    det = make(n)
    det.load(filled)  # type: ignore[attr-defined]
    idx, ok = np.arange(n), np.ones(n, np.bool_)
    warm = make(n)  # the live kernel loaded (or compiled) before the clock starts
    warm.update(idx, t[0], x[0], ok)  # type: ignore[attr-defined]
    start = time.perf_counter()
    for r in range(m_live):
        det.update(idx, t[r], x[r], ok)  # type: ignore[attr-defined]
    live = (time.perf_counter() - start) / (m_live * n) * 1e9
    return {"live_ns": round(live, 1), "block_ns": round(block, 1)}


# the bucket detectors at one sample a second: 10-minute buckets, learning done within the history
FAST = ("rate", "tangent_angle", "inverse_velocity")


def _at_one_hertz(name: str, n: int) -> object:
    det = FACTORIES[name](n)
    params = det.params  # type: ignore[attr-defined]
    params.bucket_s[:] = 600.0
    if hasattr(params, "learn_s"):
        params.learn_s[:] = 3600.0
    return type(det)(params)


def time_one_hertz(name: str, n: int, history_s: int, samples: int) -> float:
    """ns per channel-sample of block replay at 1 s, after `history_s` seconds of history."""
    det = _at_one_hertz(name, n)
    rng = np.random.default_rng(2)
    level = np.zeros(n)
    chunk = 10_000

    def rows(start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        nonlocal level
        x = level + np.cumsum(rng.normal(0, 0.01, (count, n)), axis=0)
        level = x[-1]
        return 1.7e9 + np.arange(start, start + count, dtype=float), x

    for start in range(0, history_s, chunk):
        det.run(*rows(start, min(chunk, history_s - start)))  # type: ignore[attr-defined]
    t, x = rows(history_s, samples)
    begin = time.perf_counter()
    det.run(t, x)  # type: ignore[attr-defined]
    return (time.perf_counter() - begin) / (samples * n) * 1e9


def time_river(samples: int) -> float:
    """ns per channel-sample of HalfSpaceTrees behind a MinMaxScaler, one feature."""
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
    _, x = data(samples, 1)
    start = time.perf_counter()
    for v in x[:, 0]:
        features = {0: float(v)}
        model.score_one(features)
        model.learn_one(features)
    return (time.perf_counter() - start) / samples * 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    budget = 2e5 if args.quick else 2e6  # channel-samples per block measurement
    history = 200 if args.quick else 1100  # 10-minute steps: 7.6 days fill every window
    river_ns = time_river(2000 if args.quick else 10_000)
    rows = {}
    for name, make in FACTORIES.items():
        rows[name] = {str(n): time_detector(make, n, budget, history) for n in CHANNELS}
        rows[name]["state_bytes_10k"] = state_bytes(make(10_000))
        rows[name]["river_ratio_10k"] = round(river_ns / rows[name]["10000"]["block_ns"], 1)
    head = "".join(f"{f'{n} ch live/block':>22}" for n in CHANNELS)
    print(f"{'ns per channel-sample':22}{head}{'state @10k':>12}{'river x':>9}")
    for name, r in rows.items():
        cells = "".join(f"{r[str(n)]['live_ns']:>12.1f}{r[str(n)]['block_ns']:>10.1f}"
                        for n in CHANNELS)
        print(f"{name:22}{cells}{r['state_bytes_10k'] / 2**20:>10.2f}MB{r['river_ratio_10k']:>9}")
    print(f"{'river HalfSpaceTrees':22}{river_ns:>12.0f} ns per channel-sample (Python, per model, "
          "same run)")
    sets = {}
    for q in SETS:
        names = detectors_for(q)
        sets[q] = {"detectors": list(names),
                   "live_100_ns": round(sum(rows[d]["100"]["live_ns"] for d in names), 1),
                   "live_10k_ns": round(sum(rows[d]["10000"]["live_ns"] for d in names), 1),
                   "block_10k_ns": round(sum(rows[d]["10000"]["block_ns"] for d in names), 1)}
    print(f"\nfull default set of a point (target <= {SET_TARGET_NS:g} ns per channel-sample)")
    print(f"{'quantity':18}{'live @100 ch':>14}{'live @10k':>11}{'block @10k':>12}  detectors")
    for q, r in sets.items():
        print(f"{q:18}{r['live_100_ns']:>14.1f}{r['live_10k_ns']:>11.1f}{r['block_10k_ns']:>12.1f}"
              f"  {', '.join(r['detectors'])}")
    hz_history, hz_samples = (7_200, 2_000) if args.quick else (90_000, 20_000)
    one_hertz = {name: round(time_one_hertz(name, 100, hz_history, hz_samples), 1)
                 for name in FAST}
    print("\nat 1 s into 10-minute buckets, 100 channels, block "
          f"({hz_history / 3600:.0f} h of history): "
          + ", ".join(f"{name} {ns:.0f} ns" for name, ns in one_hertz.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "one_hertz_block_100_ns": one_hertz,
        "unit": "ns per channel-sample", "channels": list(CHANNELS), "quick": args.quick,
        "python": platform.python_version(), "machine": platform.machine(),
        "river_hst_ns": round(river_ns, 1), "detectors": rows, "default_sets": sets,
        "set_target_ns": SET_TARGET_NS}, indent=2) + "\n")
    print(f"(written to {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
