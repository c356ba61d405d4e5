"""`make bench`: every benchmark in one go; each prints its table and writes JSON to results/.
At the end, issue 18's targets beside what this run measured, met or not."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ["benchmarks.acquisition", "benchmarks.uplink", "benchmarks.uplink_window",
              "benchmarks.startup",
              "benchmarks.detector_cost", "benchmarks.wire", "benchmarks.real_data",
              "benchmarks.disk_reserve", "benchmarks.fleet", "benchmarks.peers.report"]


def _load(name: str) -> dict | None:
    try:
        return json.loads((RESULTS / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def targets() -> list[tuple[str, str, str, bool | None]]:
    """(figure, target, this run, met) for each of issue 18's targets, from the results."""
    out: list[tuple[str, str, str, bool | None]] = []
    peers = _load("peers") or {}
    mw = peers.get("systems", {}).get("MineWatch", {}).get("summary") or {}
    ratio = (mw.get("cpu_vs_floor") or {}).get("median")
    out.append(("CPU per 10k values at 10,000 values/s, over the hand-written poller", "<= 0.8",
                f"{ratio:.2f}" if ratio is not None else "n/a",
                None if ratio is None else ratio <= 0.8))
    cost = _load("detector_cost") or {}
    for q, r in cost.get("default_sets", {}).items():
        out.append((f"full default detector set of a {q} point, ns per channel-sample @10k",
                    "<= 50", f"{r['live_10k_ns']:.0f}", r["live_10k_ns"] <= 50))
    start = (_load("startup") or {}).get("sites", {})
    for name, limit in (("example", 100), ("generated", 150)):
        row = next((v["warm"] for k, v in start.items() if k.startswith(name)), None)
        if row:
            out.append((f"{name} site: RSS in service / peak RSS (MB)", f"< {limit}" if limit == 100
                        else f"<= {limit}", f"{row['rss_mb']:.0f} / {row['peak_rss_mb']:.0f}",
                        row["peak_rss_mb"] < limit if limit == 100
                        else row["peak_rss_mb"] <= limit))
    wire = (_load("wire") or {}).get("rows", {}).get("int16 x 0.01", {}).get("compact")
    if wire:
        out.append(("telemetry bytes per value, default encoding", "<= 20",
                    f"{wire['bytes_per_value']:.1f}", wire["bytes_per_value"] <= 20))
    for r in (_load("fleet") or {}).get("rows", []):
        if "error" not in r:
            out.append((f"fleet of {r['gateways']} on {r['broker']} ({r['protocol']}): events lost"
                        f", all back after a restart (s)", "0 lost",
                        f"{r['events_lost']} lost, {r['all_back_after_s']} s",
                        r["events_lost"] == 0 and r["all_back_after_s"] is not None))
    return out


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                print(f"(skipping {name}: not built yet)")
                continue
            raise
        started = time.perf_counter()
        saved, sys.argv = sys.argv, [name]
        try:
            rc = module.main()
        finally:
            sys.argv = saved
        print(f"({name} took {time.perf_counter() - started:.1f} s)")
        if rc:
            failed.append(name)
    print(f"\n== issue 18's targets, this run (load average {os.getloadavg()[0]:.1f} at the end)")
    for figure, target, got, met in targets():
        mark = "n/a" if met is None else ("met" if met else "NOT MET")
        print(f"  {figure:86s} {target:>8s} {got:>16s}  {mark}")
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
