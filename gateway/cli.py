"""`minewatch`: the gateway daemon and the field engineer's commands.

    minewatch run --config site.toml                      run the gateway
    minewatch run --config site.toml --time-scale 3600 --epoch 2026-07-20T00:00:00+08:00 --anchor T
                                                          run on a simulated clock (with firmware-sim)
    minewatch config validate site.toml                   every problem at once, with file:line
    minewatch config show site.toml                       effective settings, defaults marked
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


def _effective(cfg, raw: dict) -> list[tuple[str, object, str]]:
    """(key path, value, source) for every setting: 'file' when the file sets it, else
    'default' (or 'profile' for what a device inherits from its profile)."""
    import dataclasses
    import math

    rows: list[tuple[str, object, str]] = []

    def plain(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    def walk(prefix: str, obj, raw_part, skip=()) -> None:
        for f in dataclasses.fields(obj):
            if f.name.startswith("_") or f.name in skip:
                continue
            v = getattr(obj, f.name)
            in_file = isinstance(raw_part, dict) and f.name in raw_part
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                walk(f"{prefix}.{f.name}", v, raw_part.get(f.name, {}) if in_file else {})
                continue
            rows.append((f"{prefix}.{f.name}", plain(v), "file" if in_file else "default"))

    walk("site", cfg.site, raw.get("site", {}))
    walk("gateway", cfg.gateway, raw.get("gateway", {}))
    for i, b in enumerate(cfg.buses):
        walk(f"buses[{i}]", b, raw.get("buses", [{}])[i])
    for i, d in enumerate(cfg.devices):
        start = len(rows)
        walk(f"devices[{i}]", d, raw.get("devices", [{}])[i], skip=("profile",))
        rows[start:] = [(k, v, "profile" if k.endswith(".max_read") and src == "default" else src)
                        for k, v, src in rows[start:]]
        rows.append((f"devices[{i}].profile", d.profile.name, "file"))
    for i, p in enumerate(cfg.points):
        walk(f"points[{i}]", p, raw.get("points", [{}])[i], skip=("index",))
    if cfg.mqtt:
        walk("uplink.mqtt", cfg.mqtt, raw.get("uplink", {}).get("mqtt", {}))
    walk("outbox", cfg.outbox, raw.get("outbox", {}))
    walk("alerts", cfg.alerts, raw.get("alerts", {}))
    return rows


def cmd_config_show(args: argparse.Namespace) -> int:
    import tomllib

    cfg = _load(args.file)
    if cfg is None:
        return EXIT_CONFIG
    raw = tomllib.loads(Path(args.file).read_text(encoding="utf-8"))
    rows = _effective(cfg, raw)
    if args.json:
        print(json.dumps([{"key": k, "value": v, "source": src} for k, v, src in rows],
                         ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    for key, value, src in rows:
        text = json.dumps(value, ensure_ascii=False, default=str)
        print(f"{key} = {text}" + ("" if src == "file" else f"    # {src}"))
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


def _bus_from_args(args: argparse.Namespace):
    """A Bus for ad-hoc commissioning reads: --tcp HOST:PORT, --rtu-over-tcp HOST:PORT or --serial."""
    from gateway.config.model import Bus

    if args.tcp or args.rtu_over_tcp:
        host, _, port = (args.tcp or args.rtu_over_tcp).rpartition(":")
        transport = "tcp" if args.tcp else "rtu_over_tcp"
        return Bus("cli", transport, host or "127.0.0.1", int(port), None, 9600, "N", 1, 8,
                   args.timeout, 0, 1)
    return Bus("cli", "rtu", None, None, args.serial, args.baudrate, args.parity, args.stopbits,
               8, args.timeout, 0, 1)


async def _read_raw(bus, unit: int, table: str, address: int, count: int):
    from gateway.acquire import make_client

    client = make_client(bus)
    try:
        if not await client.connect():
            raise ConnectionError(f"cannot connect to {bus.host or bus.serial_port}")
        call = {"holding": client.read_holding_registers, "input": client.read_input_registers,
                "coil": client.read_coils, "discrete": client.read_discrete_inputs}[table]
        rr = await call(address, count=count, device_id=unit)
        if rr.isError():
            raise RuntimeError(f"unit {unit} answered exception {getattr(rr, 'exception_code', '?')}"
                               f" to {table} register {address} count {count}")
        return list(rr.bits[:count]) if table in ("coil", "discrete") else list(rr.registers)
    finally:
        client.close()


def cmd_device_read(args: argparse.Namespace) -> int:
    from gateway.modbus.decode import decode_all_orders

    bus = _bus_from_args(args)
    address = args.address - args.address_base
    try:
        words = asyncio.run(_read_raw(bus, args.unit, args.table, address, args.count))
    except Exception as exc:  # noqa: BLE001 (every failure is reported to the engineer)
        print(f"minewatch: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    if args.table in ("coil", "discrete"):
        out = {"address": args.address, "bits": [int(b) for b in words]}
        print(json.dumps(out) if args.json else " ".join(str(int(b)) for b in words))
        return EXIT_OK
    rows = []
    for k in range(len(words)):
        window = words[k:k + 4]
        decoded = {f"{t} {o}": v for (t, o), v in decode_all_orders(window).items()
                   if args.type in (None, t) and (args.order == "all" or o in (args.order,
                                                                                   "ABCD"))}
        rows.append({"address": args.address + k, "raw": window[0],
                     "hex": f"0x{window[0]:04X}", "decoded": decoded})
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for r in rows:
        print(f"{r['address']:>6}  {r['hex']}  {r['raw']:>6}")
        for name, v in r["decoded"].items():
            print(f"        {name:16s} {v:.6g}")
    return EXIT_OK


def cmd_device_test(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _numba_cache(cfg)
    from detectors.base import Quality
    from gateway.acquire import DevicePoller, make_client
    from gateway.clock import WallClock
    from gateway.modbus.planner import describe_plan

    try:
        device = cfg.device(args.device)
    except KeyError:
        print(f"minewatch: no device {args.device!r} in {cfg.path}; it has: "
              f"{', '.join(d.name for d in cfg.devices)}", file=sys.stderr)
        return EXIT_CONFIG
    poller = DevicePoller(device, cfg)

    async def once():
        client = make_client(cfg.bus(device.bus))
        try:
            return await poller.poll(client, WallClock())
        finally:
            client.close()

    batch = asyncio.run(once())
    rows = [{"point": p.name, "quantity": p.quantity, "value": None if v != v else float(v),
             "unit": p.unit, "quality": Quality(int(q)).name.lower()}
            for p, v, q in zip(poller.points, batch.values, batch.quality, strict=True)]
    if args.json:
        print(json.dumps({"device": device.name, "points": rows, "stats": poller.stats.as_dict()},
                         ensure_ascii=False, indent=2))
    else:
        print(f"{device.name}: unit {device.unit} on bus {device.bus}, profile "
              f"{device.profile.name}")
        print("  " + describe_plan(poller.requests).replace("\n", "\n  "))
        for r in rows:
            value = "-" if r["value"] is None else f"{r['value']:.4f}"
            print(f"  {r['point']:12s} {r['quantity']:18s} {value:>12s} {r['unit']:6s} "
                  f"{r['quality']}")
    return EXIT_OK if all(r["quality"] == "good" for r in rows) else EXIT_RUNTIME


def cmd_alerts_test(args: argparse.Namespace) -> int:
    """Publish one test alert with its own client id and no will: never the daemon's session."""
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    if cfg.mqtt is None:
        print(f"minewatch: {cfg.path} has no [uplink.mqtt]", file=sys.stderr)
        return EXIT_CONFIG
    import threading
    import time
    import uuid

    from paho.mqtt.client import CallbackAPIVersion, Client
    from paho.mqtt.enums import MQTTProtocolVersion

    from gateway.alerts.encoder import EVENT_SCHEMA, time_fields, topic

    m = cfg.mqtt
    now = time.time()
    event = {"schema": EVENT_SCHEMA, "event_id": str(uuid.uuid4()), "alert_id": str(uuid.uuid4()),
             "seq": 0, "kind": "safety", "state": "raised", "level": "blue",
             "grade_roman": "IV", "prev_level": "none", "site": cfg.site.code,
             "gateway": cfg.gateway.id, "device": "", "point": "TEST", "quantity": "generic",
             "unit": "", "detector": "test", "value": None, "threshold": None,
             "criterion": "commissioning test", "evidence": {},
             "message": {"zh": "测试预警，请忽略", "en": "test alert, please ignore"},
             "since": int(now * 1000), **time_fields("observed_at", now),
             **time_fields("sent_at", now), "test": True}
    v5 = m.protocol == "5"
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"{m.client_id}-test-{os.getpid()}",
                    protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311)
    if m.username:
        pw = m.password_file.read_text(encoding="utf-8").strip() if m.password_file else None
        client.username_pw_set(m.username, pw)
    if m.tls_ca or m.tls_cert:
        client.tls_set(ca_certs=str(m.tls_ca) if m.tls_ca else None,
                       certfile=str(m.tls_cert) if m.tls_cert else None,
                       keyfile=str(m.tls_key) if m.tls_key else None)
    result: dict = {}
    done = threading.Event()

    def on_connect(c, u, flags, rc, props) -> None:
        result["connect"] = str(rc)
        if rc.is_failure:
            done.set()
            return
        c.publish(topic(m.prefix, cfg.site.code, cfg.gateway.id, "alert"),
                  json.dumps(event, ensure_ascii=False).encode(), qos=1)

    def on_publish(c, u, mid, rc, props) -> None:
        result["puback"] = str(rc)
        result["reason_code"] = getattr(rc, "value", 0)
        done.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    try:
        client.connect(m.host, m.port, keepalive=10)
    except OSError as exc:
        print(f"minewatch: cannot reach the broker {m.host}:{m.port}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()
    ok = result.get("reason_code", 0x80) < 0x80 and "puback" in result
    report = {"broker": f"{m.host}:{m.port}", "event_id": event["event_id"], **result, "ok": ok}
    print(json.dumps(report, ensure_ascii=False) if args.json else
          f"test alert {event['event_id']} to {m.host}:{m.port}: connect {result.get('connect')}, "
          f"PUBACK {result.get('puback', 'none')} (reason code "
          f"{result.get('reason_code', '-')}) -> {'OK' if ok else 'NOT DELIVERED'}")
    return EXIT_OK if ok else EXIT_RUNTIME


def cmd_replay(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from gateway.replay import ReplayError, replay

    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "minewatch-numba"))
    try:
        summary = replay(args.input, args.out, quantity=args.quantity, config=args.config,
                         events_path=args.events, columns=args.columns, sep=args.sep, tz=args.tz)
    except (ReplayError, ConfigError, OSError) as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(json.dumps(summary) if args.json else
          f"{summary['rows']} rows x {summary['channels']} channels replayed: "
          f"{summary['events']} event(s), highest grade {summary['max_grade']}; wrote {args.out}")
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
    show = config.add_parser("show", help="the effective config: every setting with its value "
                             "and whether it came from the file or a default")
    show.add_argument("file", type=Path)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_config_show)

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
    atest = alerts.add_parser("test", help="publish one test alert (test: true, own client id, "
                              "no will) and report the broker's PUBACK reason code")
    atest.add_argument("--config", required=True, type=Path)
    atest.add_argument("--json", action="store_true")
    atest.set_defaults(func=cmd_alerts_test)

    device = sub.add_parser("device", help="field device tools").add_subparsers(dest="sub",
                                                                                 required=True)
    plan = device.add_parser("plan", help="the read plan: merged Modbus requests per device")
    plan.add_argument("--config", required=True, type=Path)
    plan.add_argument("device", nargs="*", help="device names (default: all)")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=cmd_device_plan)
    read = device.add_parser(
        "read", help="raw registers decoded in every type and word order side by side",
        description="example: minewatch device read --tcp 192.0.2.10:502 --unit 1 --address 0 "
                    "--count 4 --order all")
    where = read.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT")
    where.add_argument("--rtu-over-tcp", metavar="HOST:PORT")
    where.add_argument("--serial", metavar="PORT", help="e.g. /dev/ttyUSB0")
    read.add_argument("--baudrate", type=int, default=9600)
    read.add_argument("--parity", choices=["N", "E", "O"], default="N")
    read.add_argument("--stopbits", type=int, default=1)
    read.add_argument("--unit", type=int, required=True)
    read.add_argument("--table", choices=["holding", "input", "coil", "discrete"],
                      default="holding")
    read.add_argument("--address", type=int, required=True,
                      help="as the manual prints it (see --address-base)")
    read.add_argument("--address-base", type=int, choices=[0, 1], default=0,
                      help="1 if the manual counts from 1 (4xxxx style)")
    read.add_argument("--count", type=int, default=4)
    read.add_argument("--type", help="only this type (int16, uint32, float32 ...)")
    read.add_argument("--order", default="all", help="all, or one of ABCD CDAB BADC DCBA")
    read.add_argument("--timeout", type=float, default=1.0)
    read.add_argument("--json", action="store_true")
    read.set_defaults(func=cmd_device_read)
    test = device.add_parser("test", help="one poll of a configured device: values, units, "
                             "quality and the plan of requests")
    test.add_argument("device")
    test.add_argument("--config", required=True, type=Path)
    test.add_argument("--json", action="store_true")
    test.set_defaults(func=cmd_device_test)

    rp = sub.add_parser("replay", help="run an exported series through the detectors and the "
                        "alert engine, as the live gateway would have",
                        description="example: minewatch replay logger.csv --quantity water_level "
                        "--config site.toml --out graded.csv --events events.jsonl")
    rp.add_argument("input", type=Path)
    rp.add_argument("--quantity", default="generic",
                    help="the columns' quantity when there is no --config (default: generic)")
    rp.add_argument("--config", type=Path, help="a site config whose points are the columns")
    rp.add_argument("--out", required=True, type=Path)
    rp.add_argument("--events", type=Path, help="write the events as JSON lines")
    rp.add_argument("--columns", nargs="+", help="value columns (default: all after the first)")
    rp.add_argument("--sep", help="field separator (default: sniffed; loggers often use ';')")
    rp.add_argument("--tz", default="Asia/Shanghai", help="zone of naive timestamps")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_replay)

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
