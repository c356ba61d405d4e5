"""MineWatch's default detectors on real field records, beside river and a plain EWMA z-score.

    python -m benchmarks.real_data [DATA_DIR] [--sets qili ridgecrest ...] [--no-baselines]

DATA_DIR (default ../shared/data beside the repository) holds the sets its README describes;
benchmarks/real_sets.py loads them (never copying them) and holds the table of what happened
when. Each run of a set goes through the gateway's own replay path (`gateway.replay.
replay_arrays`: the detect stage and the alert engine) as a new site would: the default
detectors of each point's quantity and no thresholds. In the same run:

- river HalfSpaceTrees (`detectors.river_adapter`, its defaults as benchmarks/ground_truth.py
  uses them: 10 trees, height 8, window 250, q 0.99, 3 samples to raise and to clear), one model
  per channel; on SKAB one model over each file's 8-channel vector, as benchmarks/skab.py does;
- a plain EWMA z-score per channel: mean and variance with alpha = 2 / (EWMA_SPAN + 1), scored
  before the sample is learnt, after EWMA_WARMUP samples; alarm from |z| >= EWMA_Z_ON until
  |z| < EWMA_Z_OFF.

Reported per set and point: each documented event found (a safety alert on its points in its
window) and the delay from its start; false safety alerts (alert starts outside every window of
the point) and false fault episodes (MineWatch's fault events outside the instrument windows)
per point-month (30 days of the point's record); how long an event's alert stays open after the
window; and where labels exist (SKAB's changepoints, the USGS rainfall-threshold exceedances)
NAB-style scores (benchmarks/nab.py), both at each method's own decision (its alarms) and with
the threshold swept over its per-row score (MineWatch: the combined score in [0, 1]; river: its
anomaly score; EWMA: |z|). JSON goes to benchmarks/results/real_data.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from benchmarks.nab import NAB_PROFILES, nab_counts, nab_scores, nab_sweep
from benchmarks.real_sets import DAY, LOADERS, RealSet, Run, points_of
from gateway.replay import replay_arrays

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
METHODS = ("minewatch", "river_hst", "ewma_z")
EWMA_SPAN, EWMA_WARMUP, EWMA_Z_ON, EWMA_Z_OFF = 50, 30, 4.0, 3.0
MONTH = 30 * DAY


@njit(cache=True)
def _ewma_z(x, alpha, warmup, z_on, z_off):  # pragma: no cover (numba)
    m, c = x.shape
    score = np.zeros((m, c))
    alarm = np.zeros((m, c), np.bool_)
    for k in range(c):
        mean, var, n, on = 0.0, 0.0, 0, False
        for r in range(m):
            v = x[r, k]
            if not np.isfinite(v):
                alarm[r, k] = on
                continue
            if n >= warmup:
                sd = np.sqrt(var)
                z = abs(v - mean) / sd if sd > 0 else (0.0 if v == mean else 1e6)
                score[r, k] = min(z, 1e6)
                if z >= z_on:
                    on = True
                elif z < z_off:
                    on = False
            alarm[r, k] = on
            if n == 0:
                mean = v
            else:
                d = v - mean
                mean += alpha * d
                var = (1.0 - alpha) * (var + alpha * d * d)
            n += 1
    return score, alarm


def _onsets(t: np.ndarray, active: np.ndarray) -> list[float]:
    return t[active & ~np.r_[False, active[:-1]]].tolist()


def run_minewatch(run: Run) -> dict:
    """The replay path with the defaults: alert starts, fault starts, published-level activity
    and the per-row score, per point."""
    res = replay_arrays(run.t, run.names, run.x, quantities=run.quantities, where=run.name)
    raises = {n: [] for n in run.names}
    faults = {n: [] for n in run.names}
    steps: dict[str, list[tuple[float, int]]] = {n: [] for n in run.names}
    level = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
    for e in res.events:
        p, at = e["point"], e["observed_at"] / 1000.0
        if p not in raises:  # item aggregation events: not a point's
            continue
        if e["kind"] == "safety":
            steps[p].append((at, level[e["level"]]))
            if e["state"] == "raised":
                raises[p].append(at)
        elif e["state"] == "raised":
            faults[p].append(at)
    active = {}
    for n in run.names:
        a = np.zeros(run.t.size, dtype=bool)
        for at, lv in steps[n]:
            a[run.t >= at] = lv > 0
        active[n] = a
    return {"raises": raises, "faults": faults, "active": active, "score": res.score,
            "alarm": res.grade > 0, "events": len(res.events)}


def _baseline(run: Run, score: np.ndarray, alarm: np.ndarray) -> dict:
    return {"raises": {n: _onsets(run.t, alarm[:, k]) for k, n in enumerate(run.names)},
            "faults": None, "active": {n: alarm[:, k] for k, n in enumerate(run.names)},
            "score": score, "alarm": alarm}


def run_river(run: Run, vector: bool) -> dict:
    from detectors.river_adapter import RiverHalfSpaceTrees, RiverParams

    m, c = run.x.shape
    if vector:
        out = RiverHalfSpaceTrees(RiverParams(n=c)).run(run.t, run.x)
        return _baseline(run, out.score.astype(float), out.grade > 0)
    score, alarm = np.zeros((m, c)), np.zeros((m, c), dtype=bool)
    for k in range(c):
        out = RiverHalfSpaceTrees(RiverParams(n=1)).run(run.t, run.x[:, [k]])
        score[:, k], alarm[:, k] = out.score[:, 0], out.grade[:, 0] > 0
    return _baseline(run, score, alarm)


def run_ewma(run: Run) -> dict:
    score, alarm = _ewma_z(np.ascontiguousarray(run.x), 2.0 / (EWMA_SPAN + 1), EWMA_WARMUP,
                           EWMA_Z_ON, EWMA_Z_OFF)
    return _baseline(run, score, alarm)


def _windows_of(rs: RealSet, run: Run, point: str) -> list[tuple]:
    return [w for w in rs.windows + run.windows if point in points_of(w[2], [point])]


def score_set(rs: RealSet, outputs: dict[str, list[dict]]) -> dict:
    """Events found and delays, false alerts and faults per point, NAB where labelled, for
    each method's outputs (one per run, in rs.runs order)."""
    result: dict = {"set": rs.name, "title": rs.title, "zone": rs.zone, "methods": {}}
    points = [(run, n) for run in rs.runs for n in run.names]
    months = {(run.name, n): _span(run.t, run.x[:, k]) / MONTH
              for run in rs.runs for k, n in enumerate(run.names)}
    result["points"] = len(points)
    result["point_months"] = round(sum(months.values()), 2)
    for method, outs in outputs.items():
        events, per_point = [], {}
        for run, out in zip(rs.runs, outs, strict=True):
            for name, kind, pattern, start, end, early, grace in rs.windows + run.windows:
                pts = points_of(pattern, run.names)
                if kind != "event" or not pts:
                    continue
                hits = [at for p in pts for at in out["raises"][p]
                        if start - early <= at <= end + grace]
                i = int(np.searchsorted(run.t, start))
                held = [p for p in pts if i > 0 and out["active"][p][i - 1]]
                hits += [start] * bool(held)  # already alerting when it starts: no delay
                after = end + grace
                open_days = max((_open_after(run.t, out["active"][p], after) for p in pts),
                                default=0.0)
                later = sum(after < at <= after + 90 * DAY for p in pts for at in out["raises"][p])
                events.append({"run": run.name, "event": name, "points": pts,
                               "found": bool(hits), "held_from_before": bool(held),
                               "delay_s": (min(hits) - start) if hits else None,
                               "open_after_days": round(open_days, 2),
                               "raises_90d_after": later})
            for p in run.names:
                wins = _windows_of(rs, run, p)
                false = [at for at in out["raises"][p]
                         if not any(s - e <= at <= f + g for _, _, _, s, f, e, g in wins)]
                row = {"run": run.name, "quantity": run.quantities[p],
                       "months": round(months[(run.name, p)], 6), "false_alerts": len(false),
                       "false_alert_times": [_iso(a) for a in false[:5]]}
                if out["faults"] is not None:
                    flagged = [w[1] for w in wins if w[1] == "instrument" and any(
                        w[3] - w[5] <= at <= w[4] + w[6] for at in out["faults"][p] +
                        out["raises"][p])]
                    ok = [w for w in wins if w[1] in ("instrument", "tolerated")]
                    ff = [at for at in out["faults"][p]
                          if not any(s - e <= at <= f + g for _, _, _, s, f, e, g in ok)]
                    row |= {"false_faults": len(ff), "false_fault_times": [_iso(a) for a in ff[:5]],
                            "instrument_flagged": len(flagged)}
                per_point[p if rs.name != "skab" else f"{run.name}:{p}"] = row
        total_months = max(sum(months.values()), 1e-9)
        summary = {"events": len(events), "found": sum(e["found"] for e in events),
                   "median_delay_s": _median([e["delay_s"] for e in events if e["found"]]),
                   "false_alerts": sum(r["false_alerts"] for r in per_point.values()),
                   "false_alerts_per_point_month": round(
                       sum(r["false_alerts"] for r in per_point.values()) / total_months, 3)}
        if method == "minewatch":
            ff = sum(r["false_faults"] for r in per_point.values())
            summary |= {"false_faults": ff,
                        "false_faults_per_point_month": round(ff / total_months, 3)}
        nab = _nab(rs, outs)
        if nab:
            summary["nab"] = nab
        result["methods"][method] = {"summary": summary, "events": events, "points": per_point}
    return result


def _nab(rs: RealSet, outs: list[dict]) -> dict | None:
    """NAB at the method's own alarms and swept over its score, over the labelled runs."""
    labelled = [(run, out) for run, out in zip(rs.runs, outs, strict=True)
                if run.changepoint is not None and run.changepoint.any()]
    if not labelled:
        return None
    window = labelled[0][0].nab_window_s
    decision, series = [], []
    for run, out in labelled:
        cols = [run.names.index(p) for p in run.nab_points]
        alarm = out["alarm"][:, cols].any(axis=1)
        decision.append(nab_counts(run.t, run.changepoint, alarm, window))
        series.append((run.t, run.changepoint, np.nanmax(out["score"][:, cols], axis=1)))
    swept = nab_sweep(series, window)
    return {"labels": int(sum(r.changepoint.sum() for r, _ in labelled)), "window_s": window,
            "decision": nab_scores(decision),
            "swept": {k: v["score"] for k, v in swept.items()},
            "swept_threshold": {k: v["threshold"] for k, v in swept.items()}}


def _open_after(t: np.ndarray, active: np.ndarray, after: float) -> float:
    i = np.searchsorted(t, after)
    if i >= t.size or not active[max(i - 1, 0)]:
        return 0.0
    rest = np.flatnonzero(~active[i:])
    return ((t[i + rest[0]] if rest.size else t[-1]) - after) / DAY


def _span(t: np.ndarray, v: np.ndarray) -> float:
    good = np.flatnonzero(np.isfinite(v))
    return float(t[good[-1]] - t[good[0]]) if good.size > 1 else 0.0


def _median(values: list) -> float | None:
    return float(np.median(values)) if values else None


def _iso(t: float) -> str:
    return np.datetime_as_string(np.datetime64(int(t), "s"), unit="m") + "Z"


def _plain(o: object) -> object:
    """numpy scalars in the JSON as plain numbers."""
    return o.item() if hasattr(o, "item") else str(o)


def evaluate(rs: RealSet, methods: tuple[str, ...] = METHODS) -> tuple[dict, dict]:
    """Run the methods over a loaded set; (scored result, seconds per method)."""
    outputs, seconds = {}, {}
    for method in methods:
        started = time.perf_counter()
        if method == "minewatch":
            outputs[method] = [run_minewatch(run) for run in rs.runs]
        elif method == "river_hst":
            outputs[method] = [run_river(run, vector=rs.name == "skab") for run in rs.runs]
        else:
            outputs[method] = [run_ewma(run) for run in rs.runs]
        seconds[method] = round(time.perf_counter() - started, 2)
    return score_set(rs, outputs), seconds


def main(argv: list[str] | None = None) -> int:
    from benchmarks.real_report import print_set, print_summary

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sets", nargs="+", choices=sorted(LOADERS), default=list(LOADERS))
    ap.add_argument("--no-baselines", action="store_true", help="MineWatch only (fast)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                    "real_data.json")
    args = ap.parse_args(argv)
    if not (args.data / "README.md").is_file():
        print(f"real data not found: {args.data} has no README.md (pass DATA_DIR, e.g. "
              "../shared/data)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)  # the replayed gateway's log is not the output
    methods = ("minewatch",) if args.no_baselines else METHODS
    started = time.perf_counter()
    results = []
    for name in args.sets:
        rs = LOADERS[name](args.data)
        result, seconds = evaluate(rs, methods)
        result["seconds"] = seconds
        results.append(result)
        print_set(result)
    total = round(time.perf_counter() - started, 1)
    print_summary(results)
    print(f"(whole run {total} s, numba compile included when the cache was cold)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data), "seconds": total,
                                    "ewma": {"span": EWMA_SPAN, "warmup": EWMA_WARMUP,
                                             "z_on": EWMA_Z_ON, "z_off": EWMA_Z_OFF},
                                    "nab_profiles": NAB_PROFILES, "sets": results},
                                   indent=1, default=_plain) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
