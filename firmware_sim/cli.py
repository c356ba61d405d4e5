"""`firmware-sim`: serve a site's simulated sensors over Modbus, driven by a scenario.

    firmware-sim serve --scenario rainstorm --listen 127.0.0.1:5020 --time-scale 3600 --anchor T
    firmware-sim list

Simulated time is `epoch + (wall time - anchor) * time-scale`; give the gateway the same
`--epoch`, `--time-scale` and `--anchor` and both see the same simulated time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("firmware_sim")


def _epoch(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _cmd_list(args: argparse.Namespace) -> int:
    from firmware_sim.scenario import load_scenario, scenario_dir

    for path in sorted(scenario_dir().glob("*.toml")):
        s = load_scenario(path)
        print(f"{s.name:20s} {s.duration / 3600:6.1f} h  {s.description}")
    return 0


async def _serve(args: argparse.Namespace) -> int:
    from firmware_sim.devices import SiteSource, load_site_devices
    from firmware_sim.modbus_slave import serve_tcp
    from firmware_sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    site_config = Path(args.site_config) if args.site_config else scenario.site_config
    buses, devices = load_site_devices(site_config)
    epoch = _epoch(args.epoch) if args.epoch else scenario.epoch
    anchor = float(args.anchor) if args.anchor is not None else time.time()
    scale = float(args.time_scale)

    def now() -> float:
        return epoch + (time.time() - anchor) * scale

    listeners: list[tuple[str, int, list]] = []
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        wanted = set(args.bus) if args.bus else {n for n, b in buses.items()
                                                  if b.get("transport", "tcp") == "tcp"}
        listeners.append((host or "127.0.0.1", int(port), [d for d in devices if d.bus in wanted]))
    else:
        for name, b in buses.items():
            if b.get("transport", "tcp") == "tcp" and (not args.bus or name in args.bus):
                listeners.append((b["host"], int(b["port"]),
                                  [d for d in devices if d.bus == name]))
    if not listeners:
        print("firmware-sim: no TCP bus to serve in", site_config, file=sys.stderr)
        return 2
    servers = []
    for host, port, devs in listeners:
        source = SiteSource(devs, scenario, now, scale)
        server = await serve_tcp(source, host, port)
        bound = server.sockets[0].getsockname()[1] if server.sockets else port
        servers.append(server)
        print(json.dumps({"event": "listening", "host": host, "port": bound,
                          "units": sorted(source.units()), "scenario": scenario.name,
                          "epoch": epoch, "time_scale": scale, "anchor": anchor}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    end_real = anchor + (scenario.epoch + scenario.duration - epoch) / scale
    while not stop.is_set():
        if args.exit_at_end and time.time() > end_real:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    for server in servers:
        server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="firmware-sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="serve the scenario's devices over Modbus TCP")
    serve.add_argument("--scenario", required=True, help="scenario name or path to a .toml file")
    serve.add_argument("--site-config", help="site config to serve (default: the scenario's)")
    serve.add_argument("--listen", help="HOST:PORT for one listener serving the TCP buses "
                       "(default: each bus's own host and port)")
    serve.add_argument("--bus", action="append", help="serve only this bus (repeatable)")
    serve.add_argument("--epoch", help="simulated time at the anchor (ISO 8601 or epoch seconds; "
                       "default: the scenario's start)")
    serve.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per "
                       "real second")
    serve.add_argument("--anchor", type=float, help="wall-clock epoch seconds at which simulated "
                       "time equals --epoch (default: now); give the gateway the same value")
    serve.add_argument("--exit-at-end", action="store_true", help="stop when the scenario ends")
    sub.add_parser("list", help="list the scenarios")
    labels = sub.add_parser("labels", help="ground-truth labels of a scenario as JSON lines")
    labels.add_argument("--scenario", required=True)
    labels.add_argument("--out", help="file to write (default: stdout)")
    generate = sub.add_parser("generate", help="export a scenario's sensor values as CSV")
    generate.add_argument("--scenario", required=True)
    generate.add_argument("--period", default="10s", help="sample period (e.g. 10s, 1min)")
    generate.add_argument("--out", required=True, help="CSV file; <out>.meta.json beside it")
    generate.add_argument("--start", help="ISO 8601, epoch seconds or offset like '36h'")
    generate.add_argument("--end", help="ISO 8601, epoch seconds or offset like '48h'")
    demo = sub.add_parser("demo", help="broker + simulator + gateway + platform subscriber, "
                          "about two minutes (make demo)")
    demo.add_argument("--scenario", default="rainstorm")
    demo.add_argument("--time-scale", type=float, default=3000.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.cmd == "list":
        return _cmd_list(args)
    if args.cmd in ("labels", "generate"):
        from firmware_sim.generate import write_csv
        from firmware_sim.labels import write_labels

        try:
            if args.cmd == "labels":
                return write_labels(args.scenario, args.out)
            return write_csv(args.scenario, args.out, args.period, args.start, args.end)
        except (OSError, ValueError) as exc:
            print(f"firmware-sim {args.cmd}: {exc}", file=sys.stderr)
            return 2
    if args.cmd == "demo":
        from firmware_sim.demo import run_demo

        return run_demo(args.scenario, args.time_scale)
    try:
        return asyncio.run(_serve(args))
    except (OSError, ValueError) as exc:
        print(f"firmware-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
