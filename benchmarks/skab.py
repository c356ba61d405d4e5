"""The generic detector (and river's HalfSpaceTrees as the baseline) on SKAB, real labelled data.

    python -m benchmarks.skab --data SKAB_FOLDER [--set tuning|held_out|all]

SKAB (Katser and Kozitsin 2020) is a pump rig: 8 channels at 1 s, one labelled anomaly per file
(about 400 s after about 570 s of normal running). Each file is run by a fresh detector over its
8 channels; the file's alarm is "any channel in an event". Tuning used valve1 only (the
`tuning` set); `held_out` is valve2 and other, never looked at while tuning. The data is not in
the repository (licence): pass the folder; the script says so when it is missing.

Reported: pointwise precision / recall / F1 against the `anomaly` labels (SKAB's outlier task);
per file: detected (an alarm inside the anomaly or within 60 s after it), false alarms (alarm
starts outside that), delay from the anomaly's start to the first alarm in it; and NAB-style
scores of the changepoint task (standard, low-FP, low-FN) beside SKAB's published leaderboard.
NAB scoring: benchmarks/nab.py (SKAB's 60 s window to the right of each changepoint).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.nab import NAB_PROFILES, nab_counts, nab_scores
from detectors.generic import GenericDetector, GenericParams

SETS = {"tuning": ("valve1",), "held_out": ("valve2", "other"),
        "all": ("valve1", "valve2", "other")}
TOLERANCE_S = 60.0  # SKAB's NAB window to the right of a changepoint
# SKAB v0.9 leaderboard, changepoint task, NAB standard / low-FP / low-FN (as published in the
# README of the SKAB repository, waico/SKAB)
LEADERBOARD = {"MSCRED": (32.42, 16.53, 40.28), "Isolation forest": (26.16, 19.5, 30.82),
               "T2+Q (PCA)": (25.35, 14.51, 31.33), "Conv-AE": (23.61, 21.54, 27.55)}


def skab_params(n: int) -> GenericParams:
    """The generic detector as tuned on valve1 (20-minute experiments at 1 s: no daily cycle,
    a 5-minute warm-up, minutes rather than hours for the baseline)."""
    p = GenericParams.defaults(n)
    p.daily[:] = False
    p.warmup_s[:] = 300.0
    # chosen on valve1 from a grid of tau 300/600/1800 s, clear 60/120/300 s, z_min 3/4/5,
    # z_mult 1.2/1.5/2, slowdown 10/50/1000, raise 2/3/5: the best F1 with the fewest false alarms
    p.tau_s[:] = 600.0
    p.clear_s[:] = 60.0
    p.z_min[:] = 4.0
    p.z_mult[:] = 1.2
    p.event_slowdown[:] = 10.0
    p.raise_samples[:] = 3
    return p


def load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """t (s from the file's start), x [m, 8], anomaly label [m], changepoint [m]."""
    raw = np.genfromtxt(path, delimiter=";", skip_header=1, dtype=str)
    t = raw[:, 0].astype("datetime64[s]").astype(np.int64).astype(np.float64)
    x = raw[:, 1:9].astype(np.float64)
    label = raw[:, 9].astype(np.float64) > 0
    changepoint = raw[:, 10].astype(np.float64) > 0
    return t - t[0], x, label, changepoint


def alarms_generic(t: np.ndarray, x: np.ndarray, params: GenericParams | None = None
                   ) -> np.ndarray:
    det = GenericDetector(params or skab_params(x.shape[1]))
    return det.run(t, x).grade.max(axis=1) > 0


def alarms_river(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    from detectors.river_adapter import RiverHalfSpaceTrees, RiverParams

    # q 0.95 and one vector to raise: the stricter defaults hardly ever alarm on SKAB
    det = RiverHalfSpaceTrees(RiverParams(x.shape[1], window_size=100, warmup=300, q=0.95,
                                          raise_samples=1, clear_samples=10))
    return det.run(t, x).grade.max(axis=1) > 0


def score_file(t: np.ndarray, label: np.ndarray, alarm: np.ndarray) -> dict:
    start = t[np.argmax(label)]
    end = t[len(label) - 1 - np.argmax(label[::-1])]
    in_window = (t >= start) & (t <= end + TOLERANCE_S)
    rises = np.flatnonzero(alarm & ~np.r_[False, alarm[:-1]])
    first = t[alarm & in_window]
    return {"tp": int((alarm & label).sum()), "fp": int((alarm & ~label).sum()),
            "fn": int((~alarm & label).sum()), "detected": bool(first.size),
            "delay_s": float(first[0] - start) if first.size else None,
            "false_alarms": int((~in_window[rises]).sum())}


def summarise(rows: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    nab = nab_scores([r["nab"] for r in rows])
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    delays = [r["delay_s"] for r in rows if r["delay_s"] is not None]
    return {"files": len(rows), "precision": round(precision, 3), "recall": round(recall, 3),
            "f1": round(2 * precision * recall / (precision + recall), 3) if tp else 0.0,
            "detected": sum(r["detected"] for r in rows),
            "false_alarms": sum(r["false_alarms"] for r in rows),
            "median_delay_s": float(np.median(delays)) if delays else None,
            "nab": nab}


def evaluate(data: Path, folders: tuple[str, ...], with_river: bool) -> dict:
    results: dict = {}
    detectors = {"generic": alarms_generic}
    if with_river:
        detectors["river_hst"] = alarms_river
    for folder in folders:
        files = sorted((data / folder).glob("*.csv"), key=lambda p: int(p.stem))
        for name, fn in detectors.items():
            rows = []
            for path in files:
                t, x, label, changepoint = load(path)
                alarm = fn(t, x)
                rows.append(score_file(t, label, alarm)
                            | {"nab": nab_counts(t, changepoint, alarm, TOLERANCE_S)})
            results.setdefault(folder, {})[name] = summarise(rows)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None,
                    help="the SKAB data folder (with valve1/, valve2/, other/); default $SKAB_DATA")
    ap.add_argument("--set", choices=sorted(SETS), default="all")
    ap.add_argument("--no-river", action="store_true", help="skip the river baseline (slow)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "skab.json")
    args = ap.parse_args()
    if args.data is None and os.environ.get("SKAB_DATA"):
        args.data = Path(os.environ["SKAB_DATA"])
    if args.data is None:
        print("no SKAB data folder: pass --data or set SKAB_DATA", file=sys.stderr)
        return 2
    if not (args.data / "valve1").is_dir():
        print(f"SKAB data not found under {args.data} (pass --data)", file=sys.stderr)
        return 2
    results = evaluate(args.data, SETS[args.set], not args.no_river)
    print(f"{'folder':8} {'detector':10} {'files':>5} {'P':>6} {'R':>6} {'F1':>6} "
          f"{'detected':>8} {'false':>6} {'delay s':>8}  NAB standard / low-FP / low-FN")
    for folder, per in results.items():
        for name, s in per.items():
            delay = "-" if s["median_delay_s"] is None else f"{s['median_delay_s']:.0f}"
            nab = " / ".join(f"{s['nab'][k]:.2f}" for k in NAB_PROFILES)
            print(f"{folder:8} {name:10} {s['files']:5d} {s['precision']:6.3f} {s['recall']:6.3f} "
                  f"{s['f1']:6.3f} {s['detected']:8d} {s['false_alarms']:6d} {delay:>8}  {nab}")
    print("SKAB leaderboard (all files, changepoint task, NAB standard / low-FP / low-FN): "
          + "; ".join(f"{k} {' / '.join(map(str, v))}" for k, v in LEADERBOARD.items()))
    print("(ours: tuned on valve1, reported per folder; the leaderboard scores all of SKAB, and "
          "this scorer charges false positives flat; see the module docstring)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"set": args.set, "tuning_set": SETS["tuning"],
                                    "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
