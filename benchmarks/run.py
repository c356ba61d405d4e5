"""`make bench`: every benchmark in one go; each prints its table and writes JSON to results/."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ["benchmarks.acquisition", "benchmarks.uplink", "benchmarks.uplink_window",
              "benchmarks.startup",
              "benchmarks.detector_cost", "benchmarks.real_data", "benchmarks.disk_reserve",
              "benchmarks.peers.report"]


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
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
