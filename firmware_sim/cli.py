"""`firmware-sim`: serve a site's simulated sensors over Modbus, driven by a scenario.

    firmware-sim serve --scenario rainstorm --listen 127.0.0.1:5020 --time-scale 3600 --anchor T
    firmware-sim serve --scenario gas_leak --stats-file sim.json   # its RTU lines on ptys
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


def _runtime_faults(specs: list[str] | None) -> list:
    """`--fault DEVICE:KIND[:PARAM]` -> faults active for the whole run."""
    from firmware_sim.faults import DEVICE_FAULTS, Fault

    out = []
    for spec in specs or []:
        device, _, rest = spec.partition(":")
        kind, _, param = rest.partition(":")
        if not device or kind not in DEVICE_FAULTS:
            raise ValueError(f"--fault {spec!r}: expected DEVICE:KIND[:PARAM] with KIND one of "
                             f"{', '.join(DEVICE_FAULTS)}")
        params = {}
        if param:
            params = {"code": int(param)} if kind == "exception" else {"delay": float(param)}
        out.append(Fault(kind, float("-inf"), float("inf"), device=device, params=params))
    return out


def _line_of(devices: list, bus: dict, name: str):
    """The serial settings the devices on a line are set to (their profile's defaults)."""
    from firmware_sim.slave import LineSettings

    settings = {(d.profile.serial.baudrate, d.profile.serial.parity, d.profile.serial.stopbits)
                for d in devices}
    if len(settings) > 1:
        log.warning("bus %s: its devices are set to different serial settings %s; serving the "
                    "first", name, sorted(settings))
    baud, parity, stop = sorted(settings)[0] if settings else (9600, "N", 1)
    return LineSettings(baud, parity, stop)


async def _serve(args: argparse.Namespace) -> int:
    import os

    from firmware_sim.devices import SiteSource, load_site_devices
    from firmware_sim.scenario import load_scenario
    from firmware_sim.slave import (
        SlaveStats,
        open_pty_pair,
        serve_rtu_over_tcp,
        serve_rtu_serial,
        serve_tcp,
    )

    scenario = load_scenario(args.scenario)
    site_config = Path(args.site_config) if args.site_config else scenario.site_config
    buses, devices = load_site_devices(site_config)
    epoch = _epoch(args.epoch) if args.epoch else scenario.epoch
    anchor = float(args.anchor) if args.anchor is not None else time.time()
    scale = float(args.time_scale)
    faults = _runtime_faults(args.fault)

    def now() -> float:
        return epoch + (time.time() - anchor) * scale

    wanted = [n for n in buses if not args.bus or n in args.bus]
    # (transport, host, port or None, bus names, devices)
    listeners: list[tuple[str, str, int | None, list[str], list]] = []
    tcp_buses = [n for n in wanted if buses[n].get("transport", "tcp") == "tcp"]
    if args.listen and tcp_buses:
        host, _, port = args.listen.rpartition(":")
        listeners.append(("tcp", host or "127.0.0.1", int(port), tcp_buses,
                          [d for d in devices if d.bus in tcp_buses]))
    else:
        for n in tcp_buses:
            listeners.append(("tcp", buses[n]["host"], int(buses[n]["port"]), [n],
                              [d for d in devices if d.bus == n]))
    for n in wanted:
        transport = buses[n].get("transport", "tcp")
        if transport == "rtu_over_tcp":
            listeners.append((transport, buses[n]["host"], int(buses[n]["port"]), [n],
                              [d for d in devices if d.bus == n]))
        elif transport == "rtu":
            listeners.append((transport, "", None, [n], [d for d in devices if d.bus == n]))
    if not listeners:
        print("firmware-sim: no bus to serve in", site_config, file=sys.stderr)
        return 2
    servers, masters, report = [], [], []
    for transport, host, port, names, devs in listeners:
        source = SiteSource(devs, scenario, now, scale, faults=faults)
        stats = SlaveStats()
        info = {"event": "listening", "transport": transport, "buses": names,
                "units": sorted(source.units()), "scenario": scenario.name, "epoch": epoch,
                "time_scale": scale, "anchor": anchor}
        if transport == "rtu":
            master, path = open_pty_pair()
            masters.append(master)
            line = _line_of(devs, buses[names[0]], names[0])
            server = await serve_rtu_serial(source, master, line, stats=stats)
            info |= {"serial_port": path, "baudrate": line.baudrate, "parity": line.parity,
                     "stopbits": line.stopbits}
        else:
            serve = serve_tcp if transport == "tcp" else serve_rtu_over_tcp
            server = await serve(source, host, port, stats=stats)
            bound = server.sockets[0].getsockname()[1] if server.sockets else port
            info |= {"host": host, "port": bound}
        servers.append(server)
        report.append((info, source, stats))
        print(json.dumps(info), flush=True)

    def write_stats() -> None:
        if not args.stats_file:
            return
        doc = {"cpu_s": round(time.process_time(), 4), "wall_s": round(time.monotonic(), 3),
               "requests": sum(st.requests for _, _, st in report),
               "replies": sum(st.replies for _, _, st in report),
               "exceptions": sum(st.exceptions for _, _, st in report),
               "faults_acted": sum(src.faults_acted for _, src, _ in report),
               "listeners": [{"buses": i["buses"], "transport": i["transport"],
                              "requests": st.requests, "replies": st.replies,
                              "exceptions": st.exceptions, "ignored": st.ignored,
                              "frame_errors": st.frame_errors,
                              "line_mismatches": st.line_mismatches}
                             for i, _, st in report]}
        tmp = Path(f"{args.stats_file}.tmp")
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
        tmp.replace(args.stats_file)  # a reader never sees half a file

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    end_real = anchor + (scenario.epoch + scenario.duration - epoch) / scale
    next_stats = 0.0
    while not stop.is_set():
        if args.exit_at_end and time.time() > end_real:
            break
        if time.monotonic() >= next_stats:
            write_stats()
            next_stats = time.monotonic() + 1.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    write_stats()
    for server in servers:
        server.close()
    for master in masters:
        os.close(master)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="firmware-sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="serve the scenario's devices over Modbus: TCP, "
                           "RTU over TCP, and RTU on a pseudo-terminal per serial bus")
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
    serve.add_argument("--fault", action="append", metavar="DEVICE:KIND[:PARAM]",
                       help="switch a communication fault on for the whole run (repeatable): "
                       "timeout, exception[:code], crc, garbled, slow[:seconds], "
                       "drop_connection, sensor_fault; scheduled faults come from the scenario")
    serve.add_argument("--stats-file", type=Path, help="write the simulator's own CPU time and "
                       "requests served as JSON every second (for benchmarks)")
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
