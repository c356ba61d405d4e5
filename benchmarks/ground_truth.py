"""Detection quality on firmware_sim's ground truth: MineWatch's detectors against river.

For every scenario in firmware_sim/scenarios, the series `firmware-sim generate` would export is
replayed through MineWatch (`gateway.replay`: the live path's kernels and alert engine, with the
scenario's site config) and, in the same run, through river's HalfSpaceTrees over the site's
channel vector (`detectors.river_adapter`: MinMaxScaler then HalfSpaceTrees, 10 trees, height 8,
window 250, seed 42; anomalous above the running 0.99 quantile of its scores; 3 samples to raise
and to clear). Both are scored against `firmware-sim labels`:

- detected: safety labels (point, level) for which the point reached that level, at or after the
  label's start and before its end plus a grace of one sample period and the detector's
  debounce (GRACE_S); river has no levels or points, so any alarm episode starting in that span
  counts for it (a generous reading);
- delay: median seconds from a label's start to that first event;
- false alarms per point-day: raised safety events (river: alarm episodes) that start outside
  every safety label of their point (river: of any point) widened by GRACE_S;
- dam_creep: the lead time of the first red warning before the declared failure t_f.

Run: `python -m benchmarks.ground_truth [--scenarios a b] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from detectors.river_adapter import RiverHalfSpaceTrees, RiverParams
from firmware_sim.generate import write_csv
from firmware_sim.labels import scenario_labels
from firmware_sim.scenario import load_scenario
from gateway.replay import read_series, replay

SCENARIOS = Path(__file__).resolve().parent.parent / "firmware_sim" / "scenarios"
LEVEL = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
GRACE_S = 6 * 3600.0  # the slowest detectors (6-hour buckets, 12-hour hold) need this much


def _period(duration: float) -> str:
    """The gateway's poll cadence for a short scenario; a minute for month-long ones."""
    return "10s" if duration <= 2 * 86400 else "60s"


def _score(labels: list[dict], raised: list[tuple[str, float, int]], n_points: int,
           days: float, per_point: bool,
           levels: dict[str, list[tuple[float, int]]] | None = None) -> dict:
    """Detections, delays and false alarms of alarm onsets (point, t, level) against labels."""
    # a creep's accelerating stage is a true warning time too: the tangent-angle and
    # inverse-velocity criteria are meant to speak there, before any threshold is crossed
    safety = [lab for lab in labels if lab["kind"] in ("safety", "precursor")]
    detected, delays = 0, []
    for lab in safety:
        want = LEVEL[lab["expected_level"] or "blue"] if per_point else 1
        hits = [t for p, t, g in raised
                if (p == lab["point"] or not per_point) and g >= want
                and lab["start"] <= t <= lab["end"] + GRACE_S]
        if per_point and levels is not None:
            # the published level counts, not only a new raise: a point already at red from
            # the tangent angle when its displacement crosses blue has warned, with no delay
            held = [lv for t, lv in levels.get(lab["point"], []) if t < lab["start"]]
            if held and held[-1] >= want:
                hits.append(lab["start"])
        if hits:
            detected += 1
            delays.append(min(hits) - lab["start"])
    false = 0
    for p, t, _ in raised:
        near = [lab for lab in safety if (lab["point"] == p or not per_point)
                and lab["start"] - GRACE_S <= t <= lab["end"] + GRACE_S]
        false += not near
    return {"labels": len(safety), "detected": detected,
            "delay_s": float(np.median(delays)) if delays else None,
            "false_per_point_day": false / max(n_points * days, 1e-9)}


def _river(t: np.ndarray, x: np.ndarray) -> list[tuple[str, float, int]]:
    """Alarm episode onsets of HalfSpaceTrees over the channel vector (gaps carried forward)."""
    filled = np.zeros_like(x)
    for k in range(x.shape[1]):  # river takes no NaN: hold the last good value
        col = x[:, k]
        good = np.flatnonzero(np.isfinite(col))
        if good.size:
            last = np.maximum.accumulate(np.where(np.isfinite(col), np.arange(col.size), 0))
            filled[:, k] = np.where(np.arange(col.size) < good[0], col[good[0]], col[last])
    det = RiverHalfSpaceTrees(RiverParams(n=x.shape[1]))
    out = det.run(t, filled)
    alarm = out.grade.max(axis=1) > 0
    onsets = np.flatnonzero(alarm & ~np.r_[False, alarm[:-1]])
    return [("*", float(t[i]), 1) for i in onsets]


def run_scenario(name: str, work: Path, with_river: bool = True) -> dict:
    sc = load_scenario(name)
    csv_path = work / f"{name}.csv"
    write_csv(name, str(csv_path), period=_period(sc.duration))
    labels = scenario_labels(sc)
    events_path = work / f"{name}.events.jsonl"
    started = time.perf_counter()
    summary = replay(csv_path, work / f"{name}.out.csv", config=sc.site_config,
                     events_path=events_path, tz="UTC")
    mw_s = time.perf_counter() - started
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    raised = [(e["point"], e["observed_at"] / 1000.0, LEVEL[e["level"]]) for e in events
              if e["kind"] == "safety" and e["state"] in ("raised", "escalated")
              and not e["point"].startswith("item:")]
    levels: dict[str, list[tuple[float, int]]] = {}  # point -> (time, published level) steps
    for e in events:
        if e["kind"] == "safety":
            levels.setdefault(e["point"], []).append((e["observed_at"] / 1000.0,
                                                      LEVEL[e["level"]]))
    t, names, x = read_series(csv_path, None, ",", ZoneInfo("UTC"))
    days = sc.duration / 86400.0
    result = {"scenario": name, "rows": summary["rows"], "points": len(names), "days": days,
              "minewatch": {**_score(labels, raised, len(names), days, True, levels),
                            "events": len(events), "seconds": round(mw_s, 2)},
              "faults": {"labels": sum(lab["kind"] == "fault" for lab in labels),
                         "fault_events": sum(e["kind"] == "fault" and e["state"] == "raised"
                                             for e in events)}}
    if with_river:
        started = time.perf_counter()
        river_raised = _river(t, x)
        result["river_hst"] = {**_score(labels, river_raised, len(names), days, False),
                               "events": len(river_raised),
                               "seconds": round(time.perf_counter() - started, 2)}
    failure = [lab["start"] for lab in labels if lab["kind"] == "failure"]
    if failure:
        reds = [t_ for _, t_, g in raised if g == 4]
        result["red_lead_h"] = (failure[0] - min(reds)) / 3600.0 if reds else None
    return result


def _table(results: list[dict]) -> str:
    def fmt(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    lines = [f"{'scenario':<13}{'detector':<11}{'detected':>10}{'delay h':>9}"
             f"{'FA/pt-day':>11}{'events':>8}{'red lead h':>12}"]
    for r in results:
        for who in ("minewatch", "river_hst"):
            s = r[who]
            lead = fmt(r.get("red_lead_h")) if who == "minewatch" and "red_lead_h" in r else ""
            lines.append(f"{r['scenario']:<13}{who:<11}{s['detected']:>5}/{s['labels']:<4}"
                         f"{fmt(s['delay_s'] and s['delay_s'] / 3600.0):>9}"
                         f"{s['false_per_point_day']:>11.3f}{s['events']:>8}{lead:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+",
                    default=sorted(p.stem for p in SCENARIOS.glob("*.toml")))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)  # the replayed gateway's warnings are not the output
    with tempfile.TemporaryDirectory(prefix="minewatch-gt-") as work:
        results = []
        for name in args.scenarios:
            site = load_scenario(name).site_config
            if not site.is_file():  # a scenario whose site config is not written yet
                print(f"{name}: skipped, its site config {site} does not exist")
                continue
            results.append(run_scenario(name, Path(work)))
    print(_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
