"""Start-up benchmark: cold and warm start to the first values read and graded, and resident memory,
for the example tailings pond and for a generated 10,000-point site (200 devices x 50 points).

    python -m benchmarks.startup [--devices 200] [--points 50] [--settle 8]

Cold: an empty numba cache folder (every kernel compiles); warm: the same folder again (kernels
load from the cache, as on a site after the first start). Each run spawns `minewatch run` as a
real process against `firmware-sim serve` on loopback and times from spawn to the gateway's
"first_values" log line; memory is the process's VmRSS after `--settle` seconds and its peak
(VmHWM). Both systems run in the same invocation on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# `minewatch run` as a site has it (scipy is installed, for river, and kept out of the gateway's
# process: gateway/numba_cache.py)
GATEWAY = [sys.executable, "-m", "gateway.cli"]


def generated_site(out: Path, devices: int, points: int, first_port: int, per_bus: int = 20
                   ) -> Path:
    """A site of `devices` analog-input modules with `points` graded channels each, on TCP buses
    of `per_bus` devices (one simulator listener per bus)."""
    lines = ['[site]\ncode = "BENCH-10K"\nname = "generated site"\nkind = "underground_mine"\n'
             'timezone = "Asia/Shanghai"\n',
             f'[gateway]\nid = "gw-bench"\nstate_dir = "{out / "state"}"\nlisten = "off"\n',
             f'profiles_dir = "{ROOT / "config" / "profiles"}"\n']
    buses = (devices + per_bus - 1) // per_bus
    for b in range(buses):
        lines.append(f'[[buses]]\nname = "bus{b}"\ntransport = "tcp"\nhost = "127.0.0.1"\n'
                     f'port = {first_port + b}\ntimeout = "1s"\nmax_outstanding = 1\n')
    for d in range(devices):
        lines.append(f'[[devices]]\nname = "ai{d:03d}"\nbus = "bus{d // per_bus}"\n'
                     f'unit = {d % per_bus + 1}\nprofile = "analog_input_64ch"\nperiod = "10s"\n'
                     'abnormal_period = "10s"\n')
    for d in range(devices):
        for p in range(points):
            lines.append(f'[[points]]\nname = "P{d:03d}-{p:02d}"\nquantity = "generic"\n'
                         f'device = "ai{d:03d}"\nchannel = "ai{p + 1}"\n'
                         'thresholds = { direction = "upper", blue = 50.0, yellow = 60.0, '
                         'orange = 70.0, red = 80.0 }\n')
    path = out / "site_10k.toml"
    # profiles_dir is a top-level key: it must come before the first table
    path.write_text(lines[2] + lines[0] + lines[1] + "\n".join(lines[3:]), encoding="utf-8")
    return path


def _proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _free_port_block(n: int) -> int:
    import socket

    for base in range(21000, 60000, 97):
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no block of free ports")


def _memory(pid: int) -> dict[str, int]:
    """kB of VmRSS, VmHWM (peak RSS), RssAnon (private memory) and RssFile (pages of mapped
    files: shared libraries, of which numba's LLVM is most; clean, shared, reclaimable)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0])
    return out


def measure(site: Path, cache: Path, settle: float, log: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    gw = subprocess.Popen([*GATEWAY, "run", "--config", str(site)],
                          cwd=ROOT, env=env, stdout=open(log, "w"),  # noqa: SIM115
                          stderr=subprocess.STDOUT)
    first = None
    peak_anon = 0
    try:
        while time.perf_counter() - started < 180:
            peak_anon = max(peak_anon, _memory(gw.pid).get("RssAnon", 0))
            if '"first_values"' in log.read_text():
                first = time.perf_counter() - started
                break
            if gw.poll() is not None:
                raise RuntimeError(f"the gateway exited: {log.read_text()[-2000:]}")
            time.sleep(0.01)
        end = time.perf_counter() + settle
        while time.perf_counter() < end:  # private memory peaks are short: sample it
            peak_anon = max(peak_anon, _memory(gw.pid).get("RssAnon", 0))
            time.sleep(0.05)
        mem = _memory(gw.pid)
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(30)
    return {"first_values_s": first, "rss_mb": mem["VmRSS"] / 1024,
            "peak_rss_mb": mem["VmHWM"] / 1024, "private_mb": mem["RssAnon"] / 1024,
            "peak_private_mb": max(peak_anon, mem["RssAnon"]) / 1024,
            "file_mb": mem["RssFile"] / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--settle", type=float, default=8.0)
    args = parser.parse_args()
    from firmware_sim.demo import free_port, site_for_ports

    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-startup-"))
    sites = {}
    port = free_port()
    (work / "example").mkdir()
    sites["example tailings pond (3 points)"] = (
        site_for_ports(ROOT / "config" / "examples" / "tailings_pond.toml", work / "example",
                       modbus_port=port, mqtt_port=free_port()), [])
    first_port = _free_port_block((args.devices + 19) // 20)
    (work / "big").mkdir()
    big = generated_site(work / "big", args.devices, args.points, first_port)
    sites[f"generated ({args.devices} devices x {args.points} points)"] = (big, [])
    results = {}
    for name, (site, _) in sites.items():
        listen = ["--listen", f"127.0.0.1:{port}"] if "example" in name else []
        sim = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "serve", "--scenario",
                                "rainstorm", "--site-config", str(site), *listen],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0)
        cache = work / f"numba-{len(results)}"
        try:
            cold = measure(site, cache, args.settle, work / f"cold-{len(results)}.log")
            warm = measure(site, cache, args.settle, work / f"warm-{len(results)}.log")
        finally:
            sim.terminate()
            sim.wait(10)
        results[name] = {"cold": cold, "warm": warm}
    print("\n== start-up: spawn to first values read and graded; memory after the settle time "
          "(same run), the gateway as installed on a site (scipy kept out of its process). RSS = "
          "private + file pages; peak RSS is at the load of numba's LLVM, whose clean pages the gateway gives "
          "back once its kernels are loaded (gateway/memory.py)")
    print(f"{'site':42s} {'cold s':>7s} {'warm s':>7s} {'RSS MB':>7s} {'peak MB':>8s} "
          f"{'private':>8s} {'peak priv':>9s} {'files':>6s}")
    for name, r in results.items():
        c, w = r["cold"], r["warm"]
        print(f"{name:42s} {c['first_values_s']:7.2f} {w['first_values_s']:7.2f} "
              f"{w['rss_mb']:7.1f} {w['peak_rss_mb']:8.1f} {w['private_mb']:8.1f} "
              f"{w['peak_private_mb']:9.1f} {w['file_mb']:6.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"sites": results, "machine": {"cpus": os.cpu_count(), "python":
                                         platform.python_version()}}
    (RESULTS / "startup.json").write_text(json.dumps(out, indent=2))
    print(f"written: {RESULTS / 'startup.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
