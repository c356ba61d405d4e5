"""Runs every system against the same generated site for the same wall time, repeats, and writes
the comparison: benchmarks/results/peers.md, peers.json and PNG plots.

    python -m benchmarks.peers [--systems minewatch,collectd,thingsboard,nodered]
        [--devices 200] [--points 50] [--seconds 30] [--repeat 3] [--quick]

Per run a fresh `firmware-sim serve` (its request counter is then that system's) and a fresh
Mosquitto; the system publishes to the broker and a subscriber timestamps arrivals. Points/s
count values that reached the subscriber during the window; missed = expected (devices x points
x seconds at 1 s) - delivered; requests per poll = simulator requests in the window / expected
device polls; CPU and peak RSS are of the system's whole process tree from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.peers.measure import (
    Subscriber,
    TreeSampler,
    machine_cpu,
    simulator_requests,
    start_simulator,
)
from benchmarks.peers.systems import SYSTEMS, MineWatch, Site, System, start
from benchmarks.startup import _free_port_block, generated_site
from gateway.numba_cache import configure as numba_cache_dir

ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SIM_BOUND = 0.8  # simulator CPU share of one core above which a run is flagged
METRICS = ("points_per_s", "missed_points", "requests_per_poll", "cpu_s_per_10k_points",
           "peak_rss_mb", "delay_p50_ms", "delay_p95_ms", "sim_cpu_share", "sim_requests",
           "other_busy_cores")
FLOOR = "hand-written poller (the floor)"


def make_site(work: Path, devices: int, points: int) -> Site:
    first = _free_port_block((devices + 19) // 20)
    toml = generated_site(work, devices, points, first)
    # every device polled at 1 s (the generated site's default is 10 s)
    toml.write_text(toml.read_text().replace('period = "10s"', 'period = "1s"'))
    return Site(toml, devices, points, first)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_once(system: System, site: Site, seconds: float, work: Path, warmup: float) -> dict:
    from tests.support.services import Mosquitto, free_port

    work.mkdir(parents=True)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = Mosquitto(binary, work / "mosquitto", free_port(),
                       extra_conf=system.broker_conf(work))
    broker.start()
    stats_file = work / "sim-stats.json"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache_dir())}
    sim, sim_how = start_simulator(site.toml, stats_file, env)
    sub = Subscriber(broker.port, system.parse, system.answer)
    proc = None
    try:
        time.sleep(2.0)  # the simulator binds its listeners
        proc = start(system, site, work, broker.port)
        with TreeSampler(proc.pid) as gw_cpu, TreeSampler(sim.pid) as sim_cpu:
            # the window opens once values flow, so start-up (JIT, Node boot) is not counted
            deadline = time.monotonic() + warmup
            sub.counting = True
            while sub.values == 0:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (work / "system.log").read_bytes()[-1500:].decode(errors="replace")
                    why = "exited" if proc.poll() is not None else f"no values in {warmup:g} s"
                    raise RuntimeError(f"{system.name} {why}: {tail.strip()}")
                time.sleep(0.2)
            time.sleep(2.0)  # settle past the first round
            with sub.lock:
                sub.values, sub.delays[:] = 0, []
            req0, t0 = simulator_requests(stats_file), time.monotonic()
            busy0 = machine_cpu()
            time.sleep(seconds)
            with sub.lock:
                values, delays = sub.values, sorted(sub.delays)
            req1, t1 = simulator_requests(stats_file), time.monotonic()
            busy1 = machine_cpu()
            time.sleep(0.6)  # one more sample of both trees past t1
    finally:
        sub.close()
        if proc is not None:
            _stop(proc)
        sim.terminate()
        sim.wait(10)
        broker.stop()
    wall = t1 - t0
    g, s = gw_cpu.window(t0, t1), sim_cpu.window(t0, t1)
    expected_polls = site.devices * wall  # every device once a second
    requests = (req1 - req0) if req0 is not None and req1 is not None else None
    sim_share = s["cpu_s"] / max(1e-9, s.get("span_s", wall))

    def pct(q: float) -> float | None:
        return 1000 * delays[min(len(delays) - 1, int(q * len(delays)))] if delays else None

    return {
        "points_per_s": values / wall,
        "missed_points": max(0, round(site.devices * site.points * wall) - values),
        "requests_per_poll": requests / expected_polls if requests is not None else None,
        "cpu_s_per_10k_points": g["cpu_s"] / max(1, values) * 10_000,
        "cpu_share": g["cpu_s"] / max(1e-9, g.get("span_s", wall)),
        "peak_rss_mb": g["peak_rss_mb"],
        "delay_p50_ms": pct(0.5), "delay_p95_ms": pct(0.95),
        "sim_cpu_share": sim_share, "sim_requests": requests,
        "simulator_bottleneck": sim_share > SIM_BOUND, "request_counter": sim_how,
        "wall_s": wall,
        # cores busy on the whole machine during the window, and of that what neither this
        # system nor its simulator used (the broker, the recorder, and other jobs)
        "machine_busy_cores": (busy1[0] - busy0[0]) / max(1e-9, wall),
        "other_busy_cores": max(0.0, (busy1[0] - busy0[0] - g["cpu_s"] - s["cpu_s"]) / wall),
        "load_avg_1m": os.getloadavg()[0],
        "series": {"t": [round(t - t0, 2) for t, _, _ in gw_cpu.samples],
                   "cpu_s": [round(c, 3) for _, c, _ in gw_cpu.samples],
                   "rss_mb": [round(r, 1) for _, _, r in gw_cpu.samples]},
    }


def summarise(runs: list[dict]) -> dict:
    out = {}
    for m in METRICS:
        vals = [r[m] for r in runs if r.get(m) is not None]
        out[m] = ({"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
                  if vals else None)
    out["simulator_bottleneck"] = any(r["simulator_bottleneck"] for r in runs)
    return out


def relative_to_floor(doc: dict) -> None:
    """Each system's CPU per 10k points over the floor's in the same round of runs (the ratio the
    issue's targets are written in), as median (min-max) over the rounds."""
    floor = doc["systems"].get(FLOOR, {}).get("runs", [])
    for row in doc["systems"].values():
        ratios = [r["cpu_s_per_10k_points"] / f["cpu_s_per_10k_points"]
                  for r, f in zip(row.get("runs", []), floor, strict=False)
                  if f["cpu_s_per_10k_points"] > 0]
        if ratios and "summary" in row:
            row["summary"]["cpu_vs_floor"] = {"median": statistics.median(ratios),
                                              "min": min(ratios), "max": max(ratios)}


def _cell(s: dict | None, fmt: str) -> str:
    if s is None:
        return "n/a"
    if s["min"] == s["max"]:
        return format(s["median"], fmt)
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"


def markdown(doc: dict) -> str:
    a = doc["args"]
    lines = [f"# Peers on one simulated site: {a['devices']} Modbus TCP devices x {a['points']} "
             f"points at 1 s, {a['seconds']:g} s per run, {a['repeat']} run(s) each",
             "", f"Same machine, same invocation ({doc['machine']['cpus']} CPUs, "
             f"{doc['started']}). Medians with (min–max). MineWatch runs with its detectors, "
             "alert engine and MQTT uplink on. Simulator CPU is of one core; a row marked "
             "SIM-BOUND had the simulator above 80 % and says little about the system. CPU vs floor: "
             "CPU per 10k points over the hand-written poller's in the same round of runs. Other "
             "load: cores busy on the machine in the window besides the system and its simulator "
             "(the broker, the recorder and any other job).", "",
             "| system | points/s | missed points | Modbus req/poll | CPU s /10k pts | CPU vs floor | "
             "peak RSS MB | delay p50 ms | delay p95 ms | sim CPU | sim requests | other load "
             "(cores) | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in doc["systems"].items():
        if row.get("error"):
            lines.append(f"| {name} | error: `{row['error']}` |||||||||||| |")
            continue
        s = row["summary"]
        sim = s["sim_cpu_share"] and {k: 100 * v for k, v in s["sim_cpu_share"].items()}
        note = ("SIM-BOUND; " if s["simulator_bottleneck"] else "") + row["notes"]
        lines.append(
            f"| {name} | {_cell(s['points_per_s'], '.0f')} | {_cell(s['missed_points'], '.0f')} "
            f"| {_cell(s['requests_per_poll'], '.1f')} | {_cell(s['cpu_s_per_10k_points'], '.3f')} "
            f"| {_cell(s.get('cpu_vs_floor'), '.2f')} "
            f"| {_cell(s['peak_rss_mb'], '.0f')} | {_cell(s['delay_p50_ms'], '.0f')} "
            f"| {_cell(s['delay_p95_ms'], '.0f')} | "
            f"{_cell(sim, '.0f')} % "
            f"| {_cell(s['sim_requests'], '.0f')} | {_cell(s['other_busy_cores'], '.2f')} "
            f"| {note} |")
    lines += ["", "Delay: sample time in the system's own timestamp to arrival at the subscriber."]
    lines += [f"- {name}: {row['timestamp']}" for name, row in doc["systems"].items()
              if "timestamp" in row]
    lines += ["", "Peer versions: " + "; ".join(doc.get("versions", [])) or "", ""]
    return "\n".join(lines)


def plots(doc: dict, results: Path, prefix: str) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no plots: matplotlib is not installed; it belongs in the bench extra)")
        return []
    out = []
    fig, (cpu_ax, mem_ax) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for name, row in doc["systems"].items():
        if row.get("error") or not row["runs"]:
            continue
        ser = row["runs"][0]["series"]
        t, c = ser["t"], ser["cpu_s"]
        share = [100 * (c[i] - c[i - 1]) / max(1e-9, t[i] - t[i - 1]) for i in range(1, len(t))]
        cpu_ax.plot(t[1:], share, label=name)
        mem_ax.plot(t, ser["rss_mb"], label=name)
    cpu_ax.set_ylabel("CPU % of one core (process tree)")
    mem_ax.set_ylabel("RSS MB (process tree)")
    mem_ax.set_xlabel("s from the start of the measured window (negative: start-up)")
    cpu_ax.legend()
    cpu_ax.set_title("first run of each system")
    fig.tight_layout()
    path = results / f"{prefix}_cpu_memory.png"
    fig.savefig(path, dpi=100)
    out.append(path)
    cost = RESULTS / "detector_cost.json"
    if cost.is_file():
        d = json.loads(cost.read_text())
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for det, by_n in d["detectors"].items():
            ns = [n for n in d["channels"] if str(n) in by_n]
            ax.plot(ns, [by_n[str(n)]["live_ns"] for n in ns], marker="o", label=det)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("channels")
        ax.set_ylabel(d.get("unit", "ns per channel-sample") + " (live update)")
        ax.legend()
        fig.tight_layout()
        path = results / f"{prefix}_detector_cost.png"
        fig.savefig(path, dpi=100)
        out.append(path)
    return out


def versions(peers: list[str]) -> list[str]:
    """Installs the selected peers (setup.sh is idempotent) and returns its ok/error lines."""
    if not peers:
        return []
    try:
        done = subprocess.run(["bash", str(Path(__file__).with_name("setup.sh")), *peers],
                              cwd=ROOT,
                              capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired as exc:
        return [f"error setup: {exc}"]
    return done.stdout.splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=120.0, help="longest wait for values")
    parser.add_argument("--quick", action="store_true",
                        help="CI preset: floor,minewatch,collectd; 20 x 20 for 20 s, one run")
    parser.add_argument("--out", default="peers", help="file prefix under benchmarks/results/")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--no-setup", action="store_true", help="skip benchmarks/peers/setup.sh")
    args = parser.parse_args(argv)
    # a SIGTERM (make interrupted, CI timeout) unwinds through the finally blocks that stop the
    # system, the simulator and the broker instead of orphaning them
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.systems, args.devices, args.points, args.seconds, args.repeat = \
            "floor,minewatch,collectd", 20, 20, 20.0, 1
        args.out = args.out if args.out != "peers" else "peers_quick"
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    setup = [] if args.no_setup else versions([n for n in names if n in ("collectd", "thingsboard", "nodered")])
    setup_errors = {line.split()[1].rstrip(":"): line for line in setup
                    if line.startswith("error ")}
    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-peers-"))
    site = make_site(work, args.devices, args.points)
    doc: dict = {"args": vars(args), "started": time.strftime("%Y-%m-%d %H:%M UTC",
                                                               time.gmtime()),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                 "versions": [v for v in setup if v.startswith("ok ")], "systems": {},
                 "workdir": str(work)}
    systems = {key: SYSTEMS[key]() for key in names}
    peer = {"thingsboard": "thingsboard", "nodered": "nodered", "collectd": "collectd"}
    errors: dict[str, str | None] = {}
    for key, system in systems.items():
        doc["systems"][system.name] = {"notes": system.notes, "timestamp": system.mqtt_timestamp,
                                       "runs": []}
        errors[key] = setup_errors.get(peer.get(key, "")) or system.missing()
    # the systems take turns run by run, so a change in the machine's load (other jobs on a
    # shared machine) falls on all of them alike and the ratios to the floor stay fair
    for i in range(args.repeat):
        for key, system in systems.items():
            if errors[key]:
                continue
            print(f"-- {system.name}: run {i + 1}/{args.repeat}", flush=True)
            try:
                doc["systems"][system.name]["runs"].append(
                    run_once(system, site, args.seconds, work / f"{key}-{i}", args.warmup))
            except Exception as exc:  # the row carries the exact error; the command fails
                errors[key] = str(exc)
    for key, system in systems.items():
        row = doc["systems"][system.name]
        if errors[key]:
            row["error"] = errors[key]
        else:
            row["summary"] = summarise(row["runs"])
    relative_to_floor(doc)
    out: Path = args.results
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(doc)
    (out / f"{args.out}.md").write_text(text)
    doc["args"]["results"] = str(out)
    (out / f"{args.out}.json").write_text(json.dumps(doc, indent=1))
    written = plots(doc, out, args.out)
    print(text)
    print("written:", ", ".join(str(p) for p in
                                [out / f"{args.out}.md", out / f"{args.out}.json", *written]))
    # a peer row with its exact error is a valid result; MineWatch failing to run is not
    return 1 if doc["systems"].get(MineWatch.name, {}).get("error") else 0


if __name__ == "__main__":
    raise SystemExit(main())
