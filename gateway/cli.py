"""`minewatch`: the gateway daemon and the field engineer's commands.

    minewatch run --config site.toml                      run the gateway
    minewatch run --config site.toml --time-scale 3600 --epoch 2026-07-20T00:00:00+08:00 --anchor T
                                                          run on a simulated clock (with firmware-sim)
    minewatch config validate site.toml                   every problem at once, with file:line
    minewatch alerts list --config site.toml              the site's permanent alert log
    minewatch status --config site.toml                   the running daemon's health
    minewatch device plan --config site.toml [DEVICE]     merged reads vs one per register

Exit codes: 0 success, 1 runtime failure, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2


def _load(path: str):
    from gateway.config import ConfigError, load_site

    try:
        return load_site(path)
    except ConfigError as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return None


def _numba_cache(cfg) -> None:
    # compile once, cache on disk: a warm start must not be a JIT storm (DESIGN.md)
    if "NUMBA_CACHE_DIR" not in os.environ:
        os.environ["NUMBA_CACHE_DIR"] = str(cfg.gateway.state_dir / "numba-cache")


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _numba_cache(cfg)
    from gateway.clock import SimClock, WallClock, parse_epoch
    from gateway.daemon import Gateway
    from gateway.logs import setup_logging

    setup_logging(args.log_level, json_lines=args.log_format == "json")
    if args.time_scale is not None or args.epoch is not None:
        if args.epoch is None:
            print("minewatch: --time-scale needs --epoch (the simulated time at --anchor)",
                  file=sys.stderr)
            return EXIT_CONFIG
        clock = SimClock(parse_epoch(args.epoch), args.time_scale or 1.0, args.anchor)
    else:
        clock = WallClock()
    try:
        gw = Gateway(cfg, clock)
    except ValueError as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        duration = args.duration
        if args.until is not None:
            duration = parse_epoch(args.until) - clock.now()
        asyncio.run(gw.run(duration=duration))
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_config_validate(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_site

    try:
        cfg = load_site(args.file)
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"ok": False, "file": str(exc.file), "problems": [
                {"line": p.line, "key": p.path, "message": p.message, "hint": p.hint}
                for p in exc.problems]}, ensure_ascii=False, indent=2))
        else:
            print(exc, file=sys.stderr)
        return EXIT_CONFIG
    summary = {"ok": True, "file": str(cfg.path), "site": cfg.site.code,
               "gateway": cfg.gateway.id, "buses": len(cfg.buses), "devices": len(cfg.devices),
               "points": len(cfg.points)}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(f"{cfg.path}: OK — site {cfg.site.code}, gateway {cfg.gateway.id}, "
              f"{len(cfg.buses)} bus(es), {len(cfg.devices)} device(s), {len(cfg.points)} point(s)")
    return EXIT_OK


def cmd_alerts_list(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.outbox import Outbox

    if not cfg.outbox.path.exists():
        print(f"no alert log yet at {cfg.outbox.path}", file=sys.stderr)
        return EXIT_OK
    ob = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
    rows = ob.alert_log(args.limit)
    audit = ob.audit_log(args.limit) if args.audit else []
    ob.close()
    if args.audit:
        if args.json:
            print(json.dumps(audit, ensure_ascii=False, indent=2))
            return EXIT_OK
        from datetime import datetime
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(cfg.site.timezone)
        for a in audit:
            when = datetime.fromtimestamp(a["at"], tz).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{when}  {a['kind']} {a['subject']}: {json.dumps(a['before'])} -> "
                  f"{json.dumps(a['after'])}")
        return EXIT_OK
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    for ev in rows:
        delivered = "delivered" if ev.get("delivered_at") else "PENDING"
        print(f"{ev['seq']:6d}  {ev.get('observed_at_local', ev['observed_at_iso'])}  "
              f"{ev['kind']:6s} {ev['state']:10s} {ev['level']:6s} {ev.get('point', ''):10s} "
              f"{delivered:9s}  {ev['message']['zh' if args.lang == 'zh' else 'en']}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    if cfg.gateway.listen is None:
        print(f"minewatch: {cfg.path}: [gateway] listen is off, so the daemon has no status "
              "endpoint", file=sys.stderr)
        return EXIT_CONFIG
    import urllib.error
    import urllib.request

    host, port = cfg.gateway.listen
    url = f"http://{host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc = json.loads(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        print(f"minewatch: the daemon does not answer at {url}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return EXIT_OK
    zh = args.lang == "zh"
    print(f"{'站点' if zh else 'site'} {doc['site']}  {'网关' if zh else 'gateway'} "
          f"{doc['gateway']}  v{doc['version']}  uptime {doc['uptime_s'] / 3600:.1f} h")
    print(f"{'设备在线' if zh else 'devices online'}: {doc['devices_online']}/"
          f"{len(doc['devices'])}   outbox: {doc['outbox']['events']} events, "
          f"{doc['outbox']['telemetry']} telemetry")
    for d in doc["devices"]:
        rate = "-" if d["online_rate"] is None else f"{100 * d['online_rate']:.1f} %"
        print(f"  {d['device']:20s} {'online' if d['online'] else 'OFFLINE':8s} "
              f"online rate {rate:>8s}  polls {d['polls']:<7d} missed {d['missed_deadlines']}")
    for a in doc["alerts"]:
        what = a.get("level") or f"quality {a.get('quality')}"
        print(f"  {a['kind']:6s} {a['point']:12s} {what}")
    if not doc["alerts"]:
        print("  " + ("无活动预警" if zh else "no active alerts or faults"))
    return EXIT_OK


def cmd_device_plan(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.acquire import DevicePoller
    from gateway.modbus.planner import describe_plan, naive_plan

    devices = [d for d in cfg.devices if not args.device or d.name in args.device]
    if args.device and len(devices) != len(set(args.device)):
        known = ", ".join(d.name for d in cfg.devices)
        print(f"minewatch: unknown device in {args.device}; the config has: {known}",
              file=sys.stderr)
        return EXIT_CONFIG
    out = []
    for d in devices:
        poller = DevicePoller(d, cfg)
        registers = [r for q in poller.requests for r, _ in q.fields]
        naive = len(naive_plan(registers))
        out.append({"device": d.name, "unit": d.unit, "bus": d.bus, "profile": d.profile.name,
                    "max_read": d.max_read, "max_gap": d.max_gap, "requests": [
                        {"function_code": q.function_code, "table": q.table,
                         "address": q.address, "count": q.count,
                         "registers": [r.name for r, _ in q.fields]} for q in poller.requests],
                    "naive_requests": naive})
        if not args.json:
            print(f"{d.name} (unit {d.unit} on {d.bus}, profile {d.profile.name}, max_read "
                  f"{d.max_read}, max_gap {d.max_gap}): {len(poller.requests)} request(s) per "
                  f"poll, {naive} with one request per register")
            print("  " + describe_plan(poller.requests).replace("\n", "\n  "))
    if args.json:
        print(json.dumps(out, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minewatch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run the gateway daemon")
    run.add_argument("--config", required=True, type=Path)
    run.add_argument("--epoch", help="simulation: simulated time at --anchor (ISO 8601 or epoch s)")
    run.add_argument("--time-scale", type=float, help="simulation: simulated seconds per real second")
    run.add_argument("--anchor", type=float, help="simulation: wall-clock epoch seconds at which "
                     "simulated time is --epoch (give firmware-sim the same)")
    run.add_argument("--duration", type=float, help="stop after this many seconds of clock time")
    run.add_argument("--until", help="stop when the clock reaches this time (ISO 8601 or epoch s)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="json", choices=["json", "text"])
    run.set_defaults(func=cmd_run)

    config = sub.add_parser("config", help="site config tools").add_subparsers(dest="sub",
                                                                                required=True)
    validate = config.add_parser("validate", help="check a site config; list every problem")
    validate.add_argument("file", type=Path)
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(func=cmd_config_validate)

    alerts = sub.add_parser("alerts", help="the site's alert log").add_subparsers(dest="sub",
                                                                                   required=True)
    lst = alerts.add_parser("list", help="list alert and fault events, oldest first")
    lst.add_argument("--config", required=True, type=Path)
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--audit", action="store_true", help="the audit log of threshold changes")
    lst.add_argument("--lang", choices=["zh", "en"],
                     default="zh" if os.environ.get("LANG", "").startswith("zh") else "en")
    lst.set_defaults(func=cmd_alerts_list)

    device = sub.add_parser("device", help="field device tools").add_subparsers(dest="sub",
                                                                                 required=True)
    plan = device.add_parser("plan", help="the read plan: merged Modbus requests per device")
    plan.add_argument("--config", required=True, type=Path)
    plan.add_argument("device", nargs="*", help="device names (default: all)")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=cmd_device_plan)

    status = sub.add_parser("status", help="the running daemon's health, from its /status")
    status.add_argument("--config", required=True, type=Path)
    status.add_argument("--json", action="store_true")
    status.add_argument("--lang", choices=["zh", "en"],
                        default="zh" if os.environ.get("LANG", "").startswith("zh") else "en")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
