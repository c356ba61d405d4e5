"""Acquisition benchmark: a simulated site of 200 Modbus TCP devices x 50 points polled every second.

    python -m benchmarks.acquisition [--devices 200] [--points 50] [--seconds 20]

Two runs in one invocation on the same machine, against the same `firmware-sim serve`: MineWatch
with planned reads (each device's 50 registers merged into one request) and the same gateway
forced to one request per point (`max_read = 1`), the baseline that peers' users complain about.
For each: points read per second, missed polls (the scheduler's missed-deadline counter), Modbus
requests per poll, gateway CPU seconds per 10,000 points, and the simulator's own CPU and
requests, flagging a run in which the simulator, not the gateway, was the bottleneck. The gateway
runs with its detectors and alert engine on (uplink off: no broker in this benchmark).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.startup import _free_port_block, generated_site
from gateway.numba_cache import configure as numba_cache_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _device_stats(log: Path) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        if '"device_stats"' in line:
            doc = json.loads(line)
            out.append(ast.literal_eval(doc["msg"].split(": ", 1)[1]))
    return out


def run_once(site: Path, seconds: float, work: Path, label: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache_dir()),
           "PYTHONUNBUFFERED": "1"}
    sim = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "serve", "--scenario",
                            "rainstorm", "--site-config", str(site)], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.5)
    log = work / f"gateway-{label}.log"
    gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(site)],
                          cwd=ROOT, env=env, stdout=open(log, "w"),  # noqa: SIM115
                          stderr=subprocess.STDOUT)
    try:
        while '"first_values"' not in log.read_text():
            if gw.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.05)
        gw_cpu0, sim_cpu0, t0 = _cpu_seconds(gw.pid), _cpu_seconds(sim.pid), time.perf_counter()
        time.sleep(seconds)
        gw_cpu, sim_cpu = _cpu_seconds(gw.pid) - gw_cpu0, _cpu_seconds(sim.pid) - sim_cpu0
        wall = time.perf_counter() - t0
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(60)
        sim.terminate()
        sim.wait(10)
    stats = _device_stats(log)
    polls = sum(s["polls"] for s in stats)
    failed = sum(sum(s["errors"].values()) for s in stats)
    requests = sum(s["requests"] for s in stats)
    points_per_device = int(site.read_text().count("[[points]]") / max(1, len(stats)))
    # the whole run's counts, scaled to the measured window by its share of the run
    total_polls_rate = polls / (wall + 2.0)
    points_per_s = (polls - min(polls, failed)) * points_per_device / (wall + 2.0)
    return {
        "points_per_s": points_per_s,
        "polls_per_s": total_polls_rate,
        "missed_polls": sum(s["missed_deadlines"] for s in stats),
        "requests_per_poll": requests / max(1, polls),
        "read_errors": failed,
        "gateway_cpu_s_per_10k_points": gw_cpu / max(1e-9, points_per_s * wall) * 10_000,
        "gateway_cpu_share": gw_cpu / wall,
        "simulator_cpu_share": sim_cpu / wall,
        "simulator_bottleneck": sim_cpu / wall > 0.9,
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-acq-"))
    results = {}
    for label, max_read in (("planned reads", None), ("one request per point", 1)):
        d = work / label.replace(" ", "_")
        d.mkdir()
        site = generated_site(d, args.devices, args.points,
                              _free_port_block((args.devices + 19) // 20))
        text = site.read_text().replace('period = "10s"', 'period = "1s"').replace(
            'abnormal_period = "10s"', 'abnormal_period = "1s"')
        if max_read:
            text = text.replace('abnormal_period = "1s"\n',
                                f'abnormal_period = "1s"\nmax_read = {max_read}\nmax_gap = 0\n')
        site.write_text(text)
        results[label] = run_once(site, args.seconds, work, label.replace(" ", "_"))
    print(f"\n== acquisition: {args.devices} Modbus TCP devices x {args.points} points at 1 s, "
          f"{args.seconds:g} s each, same machine, same run (detectors and alert engine on)")
    cols = ("points/s", "missed", "req/poll", "CPU s/10k pts", "gw CPU", "sim CPU", "note")
    print(f"{'gateway':24s} " + " ".join(f"{c:>13s}" for c in cols))
    for label, r in results.items():
        note = "SIMULATOR-BOUND" if r["simulator_bottleneck"] else ""
        print(f"{label:24s} {r['points_per_s']:13.0f} {r['missed_polls']:13d} "
              f"{r['requests_per_poll']:13.1f} {r['gateway_cpu_s_per_10k_points']:13.4f} "
              f"{100 * r['gateway_cpu_share']:12.0f}% {100 * r['simulator_cpu_share']:12.0f}% "
              f"{note:>13s}")
    planned, naive = results["planned reads"], results["one request per point"]
    print(f"ratio (one-per-point / planned): requests per poll "
          f"{naive['requests_per_poll'] / planned['requests_per_poll']:.0f}x, CPU per point "
          f"{naive['gateway_cpu_s_per_10k_points'] / planned['gateway_cpu_s_per_10k_points']:.1f}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "acquisition.json").write_text(json.dumps(
        {"runs": results, "devices": args.devices, "points": args.points,
         "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}, indent=2))
    print(f"written: {RESULTS / 'acquisition.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
