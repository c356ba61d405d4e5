"""`minewatch`: the gateway daemon and the field engineer's commands.

    minewatch run --config site.toml                      run the gateway
    minewatch config init --template tailings_pond --out site.toml
                                                          a commented starting config
    minewatch config validate site.toml                   every problem at once, with file:line
    minewatch config show site.toml                       effective settings, defaults marked
    minewatch device scan --port /dev/ttyUSB0 --baud 9600,19200 --parity N,E
                                                          which unit ids answer, at which settings
    minewatch device read --bus tcp://192.0.2.10:502 --unit 1 --address 0 --count 4
                                                          raw registers in every type and order
    minewatch device test DEVICE --config site.toml       one poll with the profile
    minewatch device write --port /dev/ttyUSB0 --unit 1 --address 5 --value 2000
                                                          commissioning write, confirmed, read back
    minewatch device plan --config site.toml [DEVICE]     merged reads vs one per register
    minewatch alerts test --config site.toml              a test alert; the broker's PUBACK
    minewatch alerts list --config site.toml              the site's permanent alert log
    minewatch status --config site.toml                   the running daemon's health
    minewatch replay export.csv --config site.toml --out graded.csv

Every command takes --help (with examples) and --lang zh|en (default: Chinese when LC_ALL,
LC_MESSAGES or LANG starts with zh); tables are for people, --json for scripts.

Serial ports are locked per port (LCK..ttyUSB0 in $MINEWATCH_LOCK_DIR, else /run/lock): the CLI
and the daemon never open one port at once, and a refusal names the holder.

Exit codes:
  0  success
  1  a check failed: a device does not answer or answers with an exception, a point is not
     good, a write does not read back, the broker does not acknowledge
  2  bad usage or a bad config file (file:line, key path and a hint on stderr); a write
     without --yes when there is no terminal to ask
  3  the daemon does not answer (minewatch status)
  4  the serial port is held by another process (the message names it)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import struct
import sys
import time
from pathlib import Path

from gateway.i18n import default_lang, exception_name, tr

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_CONFIG", "EXIT_DAEMON",
           "EXIT_BUSY"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DAEMON, EXIT_BUSY = 0, 1, 2, 3, 4
ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ("tailings_pond", "underground_mine", "open_pit", "chemical_plant", "metallurgy")
_command = "minewatch"  # this invocation, written into serial port locks


def _err(text: str) -> None:
    print(f"minewatch: {text}", file=sys.stderr)


def _pad(text: str, width: int, right: bool = False) -> str:
    """Pad to `width` terminal columns: a Chinese character takes two."""
    import unicodedata

    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    fill = " " * max(0, width - cols)
    return fill + text if right else text + fill


def _load(path: str):
    from gateway.config import ConfigError, load_site

    try:
        return load_site(path)
    except ConfigError as exc:
        _err(str(exc))
        return None


def _numba_cache(cfg) -> None:
    # compile once, cache on disk: a warm start must not be a JIT storm
    # (docs/contracts.md#detector-protocol)
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
            _err("--time-scale needs --epoch (the simulated time at --anchor)")
            return EXIT_CONFIG
        clock = SimClock(parse_epoch(args.epoch), args.time_scale or 1.0, args.anchor)
    else:
        clock = WallClock()
    try:
        gw = Gateway(cfg, clock)
    except ValueError as exc:
        _err(str(exc))
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
        print(tr(args.lang, "valid", file=cfg.path, site=cfg.site.code, gateway=cfg.gateway.id,
                 buses=len(cfg.buses), devices=len(cfg.devices), points=len(cfg.points)))
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
        start = len(rows)
        walk(f"points[{i}]", p, raw.get("points", [{}])[i], skip=("index",))
        if p.thresholds is not None and p.thresholds.derived:
            # levels the file does not set, derived from a standard (docs/requirements.md R3)
            mark = f"points[{i}].thresholds"
            rows[start:] = [(k, v, "derived" if k.startswith(mark) else src)
                            for k, v, src in rows[start:]]
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



def cmd_config_init(args: argparse.Namespace) -> int:
    """Copy a commented template; a file written with --out is validated where it lands."""
    template = ROOT / "config" / "templates" / f"{args.template}.toml"
    text = template.read_text(encoding="utf-8")
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    out: Path = args.out
    if out.exists() and not args.force:
        _err(tr(args.lang, "init_exists", file=out))
        return EXIT_CONFIG
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    from gateway.config import ConfigError, load_site

    try:
        load_site(out)
    except ConfigError as exc:
        # a template is tested to validate; this catches a profile library that moved away
        _err(tr(args.lang, "init_invalid", template=args.template) + "\n" + str(exc))
        return EXIT_CONFIG
    print(tr(args.lang, "init_wrote", file=out, template=args.template))
    return EXIT_OK


def cmd_alerts_list(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.outbox import Outbox

    if not cfg.outbox.path.exists():
        print(tr(args.lang, "no_alert_log", path=cfg.outbox.path), file=sys.stderr)
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
        delivered = tr(args.lang, "delivered_col" if ev.get("delivered_at") else "pending_col")
        print(f"{ev['seq']:6d}  {ev.get('observed_at_local', ev['observed_at_iso'])}  "
              f"{ev['kind']:6s} {ev['state']:10s} {ev['level']:6s} {ev.get('point', ''):10s} "
              f"{delivered:9s}  {ev['message']['zh' if args.lang == 'zh' else 'en']}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    lang = args.lang
    if cfg.gateway.listen is None:
        _err(tr(lang, "listen_off", file=cfg.path))
        return EXIT_CONFIG
    import urllib.error
    import urllib.request

    host, port = cfg.gateway.listen
    url = f"http://{host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        _err(tr(lang, "daemon_unreachable", url=url, error=exc))
        return EXIT_DAEMON
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"{tr(lang, 'st_site')} {doc['site']}  {tr(lang, 'st_gateway')} {doc['gateway']}  "
          f"v{doc['version']}  {tr(lang, 'st_uptime')} {doc['uptime_s'] / 3600:.1f} h")
    print(f"{tr(lang, 'st_online')}: {doc['devices_online']}/{len(doc['devices'])}   "
          + tr(lang, "st_outbox", events=doc["outbox"]["events"],
               telemetry=doc["outbox"]["telemetry"]))
    for d in doc["devices"]:
        rate = "-" if d["online_rate"] is None else f"{100 * d['online_rate']:.1f} %"
        state = _pad(tr(lang, "st_on" if d["online"] else "st_off"), 8)
        print(f"  {d['device']:20s} {state} {tr(lang, 'st_rate')} {rate:>8s}  "
              f"{tr(lang, 'st_polls')} {d['polls']:<7d} {tr(lang, 'st_missed')} "
              f"{d['missed_deadlines']}")
    for a in doc["alerts"]:
        what = a.get("level") or f"quality {a.get('quality')}"
        print(f"  {a['kind']:6s} {a['point']:12s} {what}")
    if not doc["alerts"]:
        print("  " + tr(lang, "st_no_alerts"))
    return EXIT_OK


def cmd_device_plan(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.acquire import DevicePoller
    from gateway.modbus.planner import describe_plan, naive_plan

    devices = [d for d in cfg.devices if not args.device or d.name in args.device]
    if args.device and len(devices) != len(set(args.device)):
        _err(tr(args.lang, "unknown_device", device=args.device, file=cfg.path,
                known=", ".join(d.name for d in cfg.devices)))
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
            print(tr(args.lang, "plan_line", device=d.name, unit=d.unit, bus=d.bus,
                     profile=d.profile.name, max_read=d.max_read, max_gap=d.max_gap,
                     n=len(poller.requests), naive=naive))
            print("  " + describe_plan(poller.requests).replace("\n", "\n  "))
    if args.json:
        print(json.dumps(out, indent=2))
    return EXIT_OK


# --------------------------------------------------------------------------- the field line

class UsageError(ValueError):
    """A bad option value: exit 2 with the message."""


def _quiet_pymodbus() -> None:
    # pymodbus logs every timeout at ERROR; the field commands report each probe themselves
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _parse_bus(text: str):
    """(transport, host, port, serial port) of tcp://H:P, rtu-over-tcp://H:P, rtu:///dev/X, a
    /dev path, or H:P (Modbus TCP)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = ("rtu", text) if text.startswith("/") else ("tcp", text)
    scheme = scheme.lower().replace("+", "-").replace("_", "-")
    if scheme in ("rtu", "serial"):
        if not rest:
            raise UsageError(f"--bus {text!r}: no serial port (rtu:///dev/ttyUSB0)")
        return "rtu", None, None, rest
    transport = {"tcp": "tcp", "rtu-over-tcp": "rtu_over_tcp", "rtu-tcp": "rtu_over_tcp"}.get(
        scheme)
    host, _, port = rest.rpartition(":")
    if transport is None or not port.isdigit():
        raise UsageError(f"--bus {text!r}: use tcp://HOST:PORT, rtu-over-tcp://HOST:PORT, "
                         "rtu:///dev/ttyUSB0 or --port /dev/ttyUSB0")
    return transport, host or "127.0.0.1", int(port), None


def _bus(transport: str, host, port, serial_port, baudrate: int = 9600, parity: str = "N",
         stopbits: int = 1, timeout: float = 1.0):
    from gateway.config.model import Bus

    return Bus("cli", transport, host, port, serial_port, baudrate, parity, stopbits, 8,
               timeout, 0, 1)


def _bus_from_args(args: argparse.Namespace, baudrate: int | None = None,
                   parity: str | None = None):
    """A Bus for ad-hoc commissioning: --bus URL, --port PATH, or --tcp/--rtu-over-tcp/--serial."""
    baud = baudrate if baudrate is not None else getattr(args, "baudrate", 9600)
    par = parity if parity is not None else getattr(args, "parity", "N")
    stop = getattr(args, "stopbits", 1)
    if getattr(args, "bus", None):
        transport, host, port, serial_port = _parse_bus(args.bus)
    elif getattr(args, "port", None):
        transport, host, port, serial_port = "rtu", None, None, args.port
    elif getattr(args, "serial", None):
        transport, host, port, serial_port = "rtu", None, None, args.serial
    else:
        transport, host, port, serial_port = _parse_bus(
            ("tcp://" + args.tcp) if getattr(args, "tcp", None)
            else "rtu-over-tcp://" + args.rtu_over_tcp)
    return _bus(transport, host, port, serial_port, baud, par, stop, args.timeout)


def _where(bus) -> str:
    if bus.transport == "rtu":
        return bus.serial_port
    scheme = "tcp" if bus.transport == "tcp" else "rtu-over-tcp"
    return f"{scheme}://{bus.host}:{bus.port}"


def _line(bus) -> str:
    """9600 8N1, or the transport for a socket."""
    if bus.transport != "rtu":
        return "tcp" if bus.transport == "tcp" else "rtu/tcp"
    return f"{bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"


def _port_lock(bus, args: argparse.Namespace, fallback_dir: Path | None = None):
    """The serial port's lock for this command (None on a socket); raises SerialPortBusy."""
    if bus.transport != "rtu":
        return None
    from gateway.serial_lock import lock_serial_port

    return lock_serial_port(bus.serial_port, command=_command,
                            directory=getattr(args, "lock_dir", None), fallback_dir=fallback_dir)


def _client(bus, trace=None):
    """A pymodbus 3.x client as acquire.make_client builds it, plus an optional packet tracer
    (scan uses it to tell line noise from silence)."""
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
    from pymodbus.framer import FramerType

    common = {"timeout": bus.timeout, "retries": 0, "reconnect_delay": 0, "trace_packet": trace}
    if bus.transport == "tcp":
        return AsyncModbusTcpClient(bus.host, port=bus.port, **common)
    if bus.transport == "rtu_over_tcp":
        return AsyncModbusTcpClient(bus.host, port=bus.port, framer=FramerType.RTU, **common)
    return AsyncModbusSerialClient(bus.serial_port, framer=FramerType.RTU, baudrate=bus.baudrate,
                                   parity=bus.parity, stopbits=bus.stopbits,
                                   bytesize=bus.bytesize, **common)


def _open_error(bus) -> str:
    """Why a serial port did not open (pymodbus only says False): ask pyserial directly."""
    if bus.transport != "rtu":
        return "connection refused or unreachable"
    import serial

    try:
        serial.Serial(bus.serial_port, baudrate=bus.baudrate, parity=bus.parity,
                      stopbits=bus.stopbits, exclusive=True).close()
    except (serial.SerialException, OSError, ValueError) as exc:
        return str(exc)
    return "the port opened on a second try: retry"


class DeviceError(RuntimeError):
    """No answer, or an exception reply; `code` is the Modbus exception code (0: no answer)."""

    def __init__(self, text: str, code: int = 0):
        super().__init__(text)
        self.code = code


async def _connect(client, bus, lang: str) -> None:
    if client.connected:
        return
    try:
        ok = await client.connect()
        detail = "" if ok else _open_error(bus)
    except Exception as exc:  # noqa: BLE001 (pyserial raises termios.error, OSError, ...)
        # e.g. a pseudo-terminal refuses parity E/O; a USB adapter unplugged
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    if not ok:
        client.close()
        raise DeviceError(tr(lang, "cannot_open" if bus.transport == "rtu" else "cannot_connect",
                             where=_where(bus), port=bus.serial_port, line=_line(bus),
                             error=detail) + ("" if bus.transport == "rtu" else f": {detail}"))


async def _read_words(client, unit: int, table: str, address: int, count: int,
                      lang: str = "en") -> list[int]:
    """Registers (or bits) of one read; DeviceError names an exception or the silence."""
    from pymodbus.exceptions import ModbusException

    call = {"holding": client.read_holding_registers, "input": client.read_input_registers,
            "coil": client.read_coils, "discrete": client.read_discrete_inputs}[table]
    try:
        rr = await call(address, count=count, device_id=unit)
    except ModbusException as exc:
        raise DeviceError(tr(lang, "no_answer", unit=unit, detail=str(exc).strip())) from None
    if rr.isError():
        code = int(getattr(rr, "exception_code", 0) or 0)
        what = f"{table} register {address} count {count}"
        raise DeviceError(tr(lang, "exc_reply", unit=unit, code=code,
                             name=exception_name(code, lang), what=what), code)
    return [int(b) for b in rr.bits[:count]] if table in ("coil", "discrete") \
        else list(rr.registers)


async def _read_raw(bus, unit: int, table: str, address: int, count: int, lang: str = "en"):
    client = _client(bus)
    try:
        await _connect(client, bus, lang)
        return await _read_words(client, unit, table, address, count, lang)
    finally:
        client.close()


def cmd_device_read(args: argparse.Namespace) -> int:
    from gateway.modbus.decode import decode_all_orders

    _quiet_pymodbus()
    bus = _bus_from_args(args)
    address = args.address - args.address_base
    with _port_lock(bus, args) or _nothing():
        try:
            words = asyncio.run(_read_raw(bus, args.unit, args.table, address, args.count,
                                          args.lang))
        except DeviceError as exc:
            _err(str(exc))
            return EXIT_FAILED
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
    lang = args.lang
    print(f"{_pad(tr(lang, 'h_address'), 7, True)}  {'hex':6}  {_pad(tr(lang, 'h_raw'), 6, True)}"
          f"  {tr(lang, 'h_decoded')}")
    for r in rows:
        print(f"{r['address']:>7}  {r['hex']}  {r['raw']:>6}")
        for name, v in r["decoded"].items():
            print(f"{'':25s}{name:16s} {v:.6g}")
    return EXIT_OK


class _nothing:
    """`with lock or _nothing():` on a socket bus, where there is no port to lock."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def cmd_device_test(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _numba_cache(cfg)
    _quiet_pymodbus()
    from detectors.base import Quality
    from gateway.acquire import DevicePoller, make_client
    from gateway.clock import WallClock
    from gateway.modbus.planner import describe_plan

    lang = args.lang
    try:
        device = cfg.device(args.device)
    except KeyError:
        _err(tr(lang, "unknown_device", device=args.device, file=cfg.path,
                known=", ".join(d.name for d in cfg.devices)))
        return EXIT_CONFIG
    poller = DevicePoller(device, cfg)
    bus = cfg.bus(device.bus)

    async def once():
        client = make_client(bus)
        try:
            return await poller.poll(client, WallClock())
        finally:
            client.close()

    with _port_lock(bus, args) or _nothing():
        batch = asyncio.run(once())
    rows = [{"point": p.name, "quantity": p.quantity, "value": None if v != v else float(v),
             "unit": p.unit, "quality": Quality(int(q)).name.lower()}
            for p, v, q in zip(poller.points, batch.values, batch.quality, strict=True)]
    if args.json:
        print(json.dumps({"device": device.name, "points": rows, "stats": poller.stats.as_dict()},
                         ensure_ascii=False, indent=2))
    else:
        print(tr(lang, "test_head", device=device.name, unit=device.unit, bus=device.bus,
                 profile=device.profile.name))
        print("  " + describe_plan(poller.requests).replace("\n", "\n  "))
        print(f"  {_pad(tr(lang, 'h_point'), 12)} {_pad(tr(lang, 'h_quantity'), 18)} "
              f"{_pad(tr(lang, 'h_value'), 12, True)} {'':6s} {tr(lang, 'h_quality')}")
        for r in rows:
            value = "-" if r["value"] is None else f"{r['value']:.4f}"
            print(f"  {r['point']:12s} {r['quantity']:18s} {value:>12s} {r['unit']:6s} "
                  f"{r['quality']}")
        errors = poller.stats.as_dict()["errors"]
        if errors:
            print(f"  errors: {errors}")
    return EXIT_OK if all(r["quality"] == "good" for r in rows) else EXIT_FAILED


def _units(text: str) -> list[int]:
    """1-247, or 1,2,10-20."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise UsageError(f"--units {text!r}: use 1-247 or 1,2,10-20") from None
        if not 1 <= a <= b <= 247:
            raise UsageError(f"--units {text!r}: unit ids run 1..247")
        out.extend(range(a, b + 1))
    return sorted(set(out))


def _csv(text: str, kind, allowed=None, what: str = "") -> list:
    values = []
    for part in text.split(","):
        try:
            v = kind(part.strip().upper() if kind is str else part.strip())
        except ValueError:
            raise UsageError(f"{what} {text!r}: {part!r} is not a {kind.__name__}") from None
        if allowed is not None and v not in allowed:
            raise UsageError(f"{what} {text!r}: {v!r} is not one of {', '.join(map(str, allowed))}")
        values.append(v)
    return values


async def _scan(args: argparse.Namespace, settings: list, units: list[int]) -> dict:
    """Probe every unit at every line setting; one client per setting."""
    found: list[dict] = []
    tried: list[dict] = []
    gateway_answers: list[dict] = []
    wire = args.address - args.address_base
    for bus in settings:
        heard = [0]

        def trace(sending: bool, data: bytes, heard=heard) -> bytes:
            if not sending:
                heard[0] += len(data)
            return data

        client = _client(bus, trace)
        entry = {"line": _line(bus), "baudrate": bus.baudrate if bus.transport == "rtu" else None,
                 "parity": bus.parity if bus.transport == "rtu" else None, "error": None,
                 "noise": False, "answered": 0}
        tried.append(entry)
        try:
            try:
                await _connect(client, bus, args.lang)
            except DeviceError as exc:
                entry["error"] = str(exc)
                continue
            for unit in units:
                before = heard[0]
                started = time.monotonic()
                row = {"unit": unit, "line": entry["line"], "baudrate": entry["baudrate"],
                       "parity": entry["parity"],
                       "stopbits": bus.stopbits if bus.transport == "rtu" else None}
                try:
                    words = await _read_words(client, unit, args.table, wire, 1, args.lang)
                    row.update(answer="registers", registers=words, exception_code=None)
                except DeviceError as exc:
                    if not exc.code:
                        # silence, or bytes that never made a frame: noise at other settings
                        if heard[0] > before:
                            entry["noise"] = True
                        if not client.connected:
                            # pymodbus drops a socket after a few silent requests
                            try:
                                await _connect(client, bus, args.lang)
                            except DeviceError as lost:
                                entry["error"] = str(lost)
                                break
                        continue
                    row.update(answer="exception", registers=None, exception_code=exc.code)
                row["latency_ms"] = round(1000 * (time.monotonic() - started), 1)
                if row["exception_code"] in (10, 11):
                    gateway_answers.append(row)  # the converter speaks, not a device
                    continue
                entry["answered"] += 1
                found.append(row)
        finally:
            client.close()
        if bus.transport == "rtu":
            await asyncio.sleep(0.05)  # let the port close before the next setting opens it
    return {"bus": _where(settings[0]), "table": args.table, "address": args.address,
            "units": [units[0], units[-1]] if units else [], "found": found, "tried": tried,
            "gateway_exceptions": gateway_answers}


def cmd_device_scan(args: argparse.Namespace) -> int:
    _quiet_pymodbus()
    lang = args.lang
    units = _units(args.units)
    base = _bus_from_args(args)
    if base.transport == "rtu":
        bauds = _csv(args.baud, int, what="--baud")
        parities = _csv(args.parity, str, ("N", "E", "O"), "--parity")
        settings = [_bus("rtu", None, None, base.serial_port, b, p, args.stopbits, args.timeout)
                    for b in bauds for p in parities]
    else:
        settings = [base]
    with _port_lock(base, args) or _nothing():
        if not args.json:
            print(tr(lang, "scan_start", where=_where(base), units=args.units,
                     settings=len(settings), timeout=args.timeout, table=args.table,
                     address=args.address), file=sys.stderr)
        report = asyncio.run(_scan(args, settings, units))
    found = report["found"]
    lines = {r["line"] for r in found}
    by_unit: dict[int, int] = {}
    for r in found:
        by_unit[r["unit"]] = by_unit.get(r["unit"], 0) + 1
    report["mixed_settings"] = len(lines) > 1
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return EXIT_OK if found else EXIT_FAILED
    for t in report["tried"]:
        if t["error"]:
            _err(t["error"])
        elif t["noise"]:
            print(tr(lang, "scan_noise", line=t["line"]))
    if found:
        print(f"{_pad(tr(lang, 'h_unit'), 5, True)}  {_pad(tr(lang, 'h_line'), 12)} "
              f"{_pad(tr(lang, 'h_latency'), 7, True)}  {tr(lang, 'h_answer')}")
        for r in found:
            if r["answer"] == "registers":
                answer = tr(lang, "answer_data", words=r["registers"])
            else:
                answer = tr(lang, "answer_exception", code=r["exception_code"],
                            name=exception_name(r["exception_code"], lang))
            print(f"{r['unit']:>5}  {r['line']:12s} {r['latency_ms']:>7.1f}  {answer}")
    for r in report["gateway_exceptions"][:1]:
        print(tr(lang, "ans_gateway", code=r["exception_code"],
                 name=exception_name(r["exception_code"], lang)))
    if report["mixed_settings"]:
        print(tr(lang, "scan_mixed"))
    for unit, n in sorted(by_unit.items()):
        if n > 1:
            print(tr(lang, "scan_same_unit", unit=unit))
    print(tr(lang, "scan_found", n=len(found)) if found else tr(lang, "scan_none"))
    return EXIT_OK if found else EXIT_FAILED


_PACK = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f",
         "int64": ">q", "uint64": ">Q", "float64": ">d"}


def encode_value(value: str, dtype: str, order: str = "ABCD") -> list[int]:
    """The register words of `value` as `dtype` in word order `order` (the inverse of
    gateway.modbus.decode.decode_words); raises ValueError when it does not fit."""
    fmt = _PACK[dtype]
    number: int | float = float(value) if dtype.startswith("float") else int(value, 0)
    try:
        data = struct.pack(fmt, number)
    except struct.error as exc:
        raise ValueError(str(exc)) from None
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if order in ("CDAB", "DCBA") and len(words) > 1:
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [((w >> 8) | (w << 8)) & 0xFFFF for w in words]
    return words


def _decoded(words: list[int], dtype: str, order: str) -> float:
    from gateway.modbus.decode import decode_words

    return float(decode_words([words], dtype, order)[0])


def _hex(words: list[int]) -> str:
    return " ".join(f"0x{w:04X}" for w in words)


def cmd_device_write(args: argparse.Namespace) -> int:
    """A commissioning write: shown, confirmed, written, read back. The daemon never writes."""
    _quiet_pymodbus()
    lang = args.lang
    bus = _bus_from_args(args)
    try:
        words = encode_value(args.value, args.type, args.order)
    except ValueError:
        _err(tr(lang, "bad_value", value=args.value, type=args.type))
        return EXIT_CONFIG
    wire = args.address - args.address_base
    value = _decoded(words, args.type, args.order)
    plan = tr(lang, "write_plan", unit=args.unit, table="holding", address=args.address,
              wire=wire, value=f"{value:g}", type=args.type, order=args.order, words=_hex(words))
    report: dict = {"bus": _where(bus), "unit": args.unit, "table": "holding",
                    "address": args.address, "wire_address": wire, "type": args.type,
                    "order": args.order, "value": value, "words": words, "before": None,
                    "written": False, "read_back": None, "verified": False, "error": None}

    def done(code: int, message: str | None = None) -> int:
        if message:
            report["error"] = report["error"] or message
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
        if message and (code or args.json):
            _err(message)  # stdout stays one JSON document
        elif message:
            print(message)
        return code

    interactive = sys.stdin.isatty()
    if not args.yes and not interactive:
        print(plan, file=sys.stderr)
        return done(EXIT_CONFIG, tr(lang, "write_refused_tty"))
    with _port_lock(bus, args) or _nothing():
        return done(*asyncio.run(_write_session(args, bus, words, wire, value, plan, report)))


async def _write_session(args: argparse.Namespace, bus, words: list[int], wire: int,
                         value: float, plan: str, report: dict) -> tuple[int, str]:
    """Read the current value, ask (unless --yes), write, read back: (exit code, message)."""
    lang = args.lang
    client = _client(bus)
    try:
        try:
            await _connect(client, bus, lang)
            if not args.no_verify:
                report["before"] = await _read_words(client, args.unit, "holding", wire,
                                                     len(words), lang)
        except DeviceError as exc:
            print(plan, file=sys.stderr)
            return EXIT_FAILED, tr(lang, "write_current_failed", error=exc)
        print(plan, file=sys.stderr)
        if report["before"] is not None:
            print(tr(lang, "write_current", words=_hex(report["before"]),
                     value=f"{_decoded(report['before'], args.type, args.order):g}"),
                  file=sys.stderr)
        if not args.yes:
            # a person at a terminal: blocking the loop while they read is harmless here
            print(tr(lang, "write_prompt"), end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("yes", "y", "是"):
                return EXIT_FAILED, tr(lang, "write_cancelled")
        try:
            await _write_words(client, args.unit, wire, words, args.fc16, lang)
        except DeviceError as exc:
            report["exception_code"] = exc.code or None
            hint = f"\n  {tr(lang, 'write_hint_fc')}" if exc.code == 1 else ""
            return EXIT_FAILED, tr(lang, "write_failed", error=exc) + hint
        report["written"] = True
        if args.no_verify:
            return EXIT_OK, tr(lang, "write_acked")
        try:
            back = await _read_words(client, args.unit, "holding", wire, len(words), lang)
        except DeviceError as exc:
            return EXIT_FAILED, tr(lang, "write_readback_failed", error=exc)
        report["read_back"] = back
        if back != words:
            return EXIT_FAILED, tr(lang, "write_mismatch", got=_hex(back), want=_hex(words))
        report["verified"] = True
        return EXIT_OK, tr(lang, "write_ok", unit=args.unit, address=args.address,
                           words=_hex(back), value=f"{value:g}")
    finally:
        client.close()


async def _write_words(client, unit: int, address: int, words: list[int], fc16: bool,
                       lang: str) -> None:
    """FC06 for one register (what most sensor manuals list), FC16 for more or when asked."""
    from pymodbus.exceptions import ModbusException

    try:
        if len(words) == 1 and not fc16:
            rr = await client.write_register(address, words[0], device_id=unit)
        else:
            rr = await client.write_registers(address, words, device_id=unit)
    except ModbusException as exc:
        raise DeviceError(tr(lang, "no_answer", unit=unit, detail=str(exc).strip())) from None
    if rr.isError():
        code = int(getattr(rr, "exception_code", 0) or 0)
        raise DeviceError(tr(lang, "exc_reply", unit=unit, code=code,
                             name=exception_name(code, lang),
                             what=f"write of holding register {address}"), code)


def cmd_alerts_test(args: argparse.Namespace) -> int:
    """Publish one test alert with its own client id and no will: never the daemon's session."""
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_CONFIG
    lang = args.lang
    if cfg.mqtt is None:
        _err(tr(lang, "no_mqtt", file=cfg.path))
        return EXIT_CONFIG
    import threading
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
    broker = f"{m.host}:{m.port}"
    try:
        client.connect(m.host, m.port, keepalive=10)
    except OSError as exc:
        _err(tr(lang, "broker_unreachable", broker=broker, error=exc))
        return EXIT_FAILED
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()
    ok = result.get("reason_code", 0x80) < 0x80 and "puback" in result
    report = {"broker": broker, "event_id": event["event_id"], **result, "ok": ok}
    print(json.dumps(report, ensure_ascii=False) if args.json else
          tr(lang, "alert_test", event_id=event["event_id"], broker=broker,
             connect=result.get("connect"), puback=result.get("puback", "none"),
             reason=result.get("reason_code", "-"),
             verdict=tr(lang, "delivered" if ok else "not_delivered")))
    return EXIT_OK if ok else EXIT_FAILED


def cmd_replay(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from gateway.replay import ReplayError, replay

    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "minewatch-numba"))
    try:
        summary = replay(args.input, args.out, quantity=args.quantity, config=args.config,
                         events_path=args.events, columns=args.columns, sep=args.sep, tz=args.tz,
                         sidecar=args.sidecar, long=args.long, plot_path=args.plot,
                         missing=args.missing)
    except (ReplayError, ConfigError, OSError) as exc:
        _err(str(exc))
        return EXIT_CONFIG
    for line in summary["input"]["warnings"]:  # what reading the export skipped or assumed
        _err(line)
    print(json.dumps(summary) if args.json else
          tr(args.lang, "replay_done", rows=summary["rows"], channels=summary["channels"],
             events=summary["events"], grade=summary["max_grade"], out=args.out))
    return EXIT_OK


# --------------------------------------------------------------------------- the parser

def _command_parser(sub, name: str, help_text: str, examples: str, func,
                    json_flag: bool = True) -> argparse.ArgumentParser:
    """A leaf command: help with examples, --lang, and usually --json."""
    p = sub.add_parser(name, help=help_text, description=help_text,
                       epilog="examples:\n" + examples.strip("\n"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lang", choices=["zh", "en"], default=default_lang(),
                   help="language of tables and messages (default: from the locale; JSON keys "
                        "stay English)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=func)
    return p


def _field_args(p: argparse.ArgumentParser, *, legacy: bool = False, scan: bool = False,
                timeout: float = 1.0) -> None:
    """Where the devices are: --bus URL or --port PATH (and the serial line settings)."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--bus", metavar="URL", help="tcp://HOST:PORT, rtu-over-tcp://HOST:PORT "
                       "(a serial device server) or rtu:///dev/ttyUSB0")
    where.add_argument("--port", metavar="PATH", help="a serial port, e.g. /dev/ttyUSB0 "
                       "(Modbus RTU)")
    if legacy:
        where.add_argument("--tcp", metavar="HOST:PORT", help=argparse.SUPPRESS)
        where.add_argument("--rtu-over-tcp", metavar="HOST:PORT", help=argparse.SUPPRESS)
        where.add_argument("--serial", metavar="PATH", help=argparse.SUPPRESS)
    if scan:
        p.add_argument("--baud", default="9600,19200",
                       help="baud rates to try, comma separated (default: 9600,19200)")
        p.add_argument("--parity", default="N", help="parities to try: N, E, O, comma separated "
                       "(default: N)")
    else:
        p.add_argument("--baud", "--baudrate", dest="baudrate", type=int, default=9600)
        p.add_argument("--parity", choices=["N", "E", "O"], default="N")
    p.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    p.add_argument("--timeout", type=float, default=timeout, help=f"seconds per request "
                   f"(default: {timeout:g})")
    p.add_argument("--address-base", type=int, choices=[0, 1], default=0,
                   help="1 if the manual counts registers from 1 (4xxxx style)")
    p.add_argument("--lock-dir", type=Path, help="folder of the serial port locks (default: "
                   "$MINEWATCH_LOCK_DIR, else /run/lock)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minewatch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    run = _command_parser(sub, "run", "run the gateway daemon", """
  minewatch run --config /etc/minewatch/site.toml
  minewatch run --config site.toml --log-format text --log-level debug
  minewatch run --config site.toml --time-scale 60 --epoch 2026-07-21T06:00:00+08:00 \\
      --anchor 1790000000      (a simulated clock, shared with firmware-sim serve)
""", cmd_run, json_flag=False)
    run.add_argument("--config", required=True, type=Path)
    run.add_argument("--epoch", help="simulation: simulated time at --anchor (ISO 8601 or epoch s)")
    run.add_argument("--time-scale", type=float, help="simulation: simulated seconds per real second")
    run.add_argument("--anchor", type=float, help="simulation: wall-clock epoch seconds at which "
                     "simulated time is --epoch (give firmware-sim the same)")
    run.add_argument("--duration", type=float, help="stop after this many seconds of clock time")
    run.add_argument("--until", help="stop when the clock reaches this time (ISO 8601 or epoch s)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="json", choices=["json", "text"])

    config = sub.add_parser("config", help="site config tools: init, validate, show",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="examples:\n  minewatch config init --template tailings_pond "
                            "--out site.toml\n  minewatch config validate site.toml\n"
                            "  minewatch config show site.toml")
    csub = config.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    init = _command_parser(csub, "init", "write a commented, valid starting config for a kind "
                           "of site", """
  minewatch config init --template tailings_pond --out site.toml
  minewatch config init --template underground_mine > site.toml
  minewatch config init --template open_pit --out site.toml --force   (replace site.toml)
""", cmd_config_init, json_flag=False)
    init.add_argument("--template", required=True, choices=TEMPLATES)
    init.add_argument("--out", type=Path, help="file to write (default: standard output)")
    init.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    validate = _command_parser(csub, "validate", "check a site config; list every problem with "
                               "file:line, key path and a hint", """
  minewatch config validate site.toml
  minewatch config validate site.toml --json     (problems as a list, for scripts)
""", cmd_config_validate)
    validate.add_argument("file", type=Path)
    show = _command_parser(csub, "show", "the effective config: every setting with its value "
                           "and whether it came from the file, a default or the profile", """
  minewatch config show site.toml
  minewatch config show site.toml --json | jq '.[] | select(.source == "default")'
""", cmd_config_show)
    show.add_argument("file", type=Path)

    alerts = sub.add_parser("alerts", help="the site's alert log; a test alert",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="examples:\n  minewatch alerts test --config site.toml\n"
                            "  minewatch alerts list --config site.toml")
    asub = alerts.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    lst = _command_parser(asub, "list", "list alert and fault events, oldest first", """
  minewatch alerts list --config site.toml --limit 20
  minewatch alerts list --config site.toml --audit     (threshold changes)
""", cmd_alerts_list)
    lst.add_argument("--config", required=True, type=Path)
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--audit", action="store_true", help="the audit log of threshold changes")
    atest = _command_parser(asub, "test", "publish one test alert (test: true, own client id, "
                            "no will) and report the broker's PUBACK reason code", """
  minewatch alerts test --config site.toml
  minewatch alerts test --config site.toml --json
""", cmd_alerts_test)
    atest.add_argument("--config", required=True, type=Path)

    device = sub.add_parser("device", help="field device tools: scan, read, test, write, plan",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="examples:\n  minewatch device scan --port /dev/ttyUSB0\n"
                            "  minewatch device read --bus tcp://192.0.2.10:502 --unit 1 "
                            "--address 0\n  minewatch device test radar_wl1 --config site.toml")
    dsub = device.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    scan = _command_parser(dsub, "scan", "which unit ids answer, and at which serial settings "
                           "(an exception reply also proves a device is there)", """
  minewatch device scan --port /dev/ttyUSB0
  minewatch device scan --port /dev/ttyUSB0 --baud 4800,9600,19200,38400 --parity N,E --units 1-32
  minewatch device scan --bus tcp://192.0.2.10:502 --units 1-10 --table input --address 0
""", cmd_device_scan)
    _field_args(scan, scan=True, timeout=0.3)
    scan.add_argument("--units", default="1-247", help="unit ids to try: 1-247, or 1,2,10-20")
    scan.add_argument("--table", choices=["holding", "input", "coil", "discrete"],
                      default="holding", help="table of the probe read (default: holding)")
    scan.add_argument("--address", type=int, default=0, help="register of the probe read "
                      "(default: 0; a device that has none there answers exception 2, which "
                      "counts)")

    read = _command_parser(dsub, "read", "raw registers decoded in every type and word order "
                           "side by side", """
  minewatch device read --bus tcp://192.0.2.10:502 --unit 1 --address 0 --count 4 --order all
  minewatch device read --port /dev/ttyUSB0 --baud 9600 --unit 2 --address 40101 \\
      --address-base 1 --count 2 --type float32
""", cmd_device_read)
    _field_args(read, legacy=True)
    read.add_argument("--unit", type=int, required=True)
    read.add_argument("--table", choices=["holding", "input", "coil", "discrete"],
                      default="holding")
    read.add_argument("--address", type=int, required=True,
                      help="as the manual prints it (see --address-base)")
    read.add_argument("--count", type=int, default=4)
    read.add_argument("--type", help="only this type (int16, uint32, float32 ...)")
    read.add_argument("--order", default="all", help="all, or one of ABCD CDAB BADC DCBA")

    test = _command_parser(dsub, "test", "one poll of a configured device: values, units, "
                           "quality and the plan of requests", """
  minewatch device test radar_wl1 --config site.toml
  minewatch device test vw_logger_a --config site.toml --json
""", cmd_device_test)
    test.add_argument("device")
    test.add_argument("--config", required=True, type=Path)
    test.add_argument("--lock-dir", type=Path, help="folder of the serial port locks")

    write = _command_parser(dsub, "write", "commissioning write of one value (installation "
                            "height, unit id, baud rate): shown, confirmed, read back", """
  minewatch device write --port /dev/ttyUSB0 --unit 1 --address 5 --value 2000
        (asks before writing; the radar's installation height in cm)
  minewatch device write --bus tcp://192.0.2.10:502 --unit 3 --address 40011 \\
      --address-base 1 --value 12.5 --type float32 --order CDAB --yes
""", cmd_device_write)
    _field_args(write)
    write.add_argument("--unit", type=int, required=True)
    write.add_argument("--address", type=int, required=True,
                       help="holding register as the manual prints it (see --address-base)")
    write.add_argument("--value", required=True, help="the value (0x... for hex integers)")
    write.add_argument("--type", default="uint16", choices=sorted(_PACK))
    write.add_argument("--order", default="ABCD", choices=["ABCD", "CDAB", "BADC", "DCBA"])
    write.add_argument("--fc16", action="store_true", help="write one register with FC16 "
                       "(default FC06) for devices that only take FC16")
    write.add_argument("--yes", action="store_true", help="write without asking")
    write.add_argument("--no-verify", action="store_true", help="skip reading before and after "
                       "(for a register that cannot be read back, or a unit id change)")

    plan = _command_parser(dsub, "plan", "the read plan: merged Modbus requests per device", """
  minewatch device plan --config site.toml
  minewatch device plan --config site.toml vw_logger_a --json
""", cmd_device_plan)
    plan.add_argument("--config", required=True, type=Path)
    plan.add_argument("device", nargs="*", help="device names (default: all)")

    rp = _command_parser(sub, "replay", "run an exported series through the detectors and the "
                         "alert engine, as the live gateway would have", """
  minewatch replay logger.csv --quantity water_level --out graded.csv
  minewatch replay logger.csv --config site.toml --out graded.csv --events events.jsonl
  firmware-sim generate --scenario rainstorm --period 10min --out storm.csv
  minewatch replay storm.csv --sidecar storm.csv.meta.json --out graded.csv --plot storm.png
""", cmd_replay)
    from gateway.replay import add_replay_arguments

    add_replay_arguments(rp)

    status = _command_parser(sub, "status", "the running daemon's health, from its /status", """
  minewatch status --config site.toml
  minewatch status --config site.toml --json
""", cmd_status)
    status.add_argument("--config", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    global _command
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    _command = "minewatch " + shlex.join(argv)
    from gateway.serial_lock import SerialPortBusy

    try:
        return args.func(args)
    except UsageError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    except BrokenPipeError:
        # `minewatch config show site.toml | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except SerialPortBusy as exc:
        holder = exc.holder.describe() if exc.holder else "?"
        _err(tr(getattr(args, "lang", "en"), "port_busy", port=exc.port, holder=holder,
                lock=exc.path))
        return EXIT_BUSY


if __name__ == "__main__":
    sys.exit(main())
