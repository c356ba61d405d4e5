"""`minewatch device scan|read|test|write|plan`: the field engineer's device tools. `test` and
`plan` use the daemon's own poller and read planner on a configured device; `read`, `scan` and
`write` talk to a device given on the command line (scan and write have their own modules)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    command_parser,
    err,
    group_parser,
    load_config,
    nothing,
    numba_cache,
    number_arg,
    pad,
)
from gateway.cli.field import (
    DeviceError,
    bus_from_args,
    field_args,
    port_lock,
    read_raw,
)
from gateway.cli.scan import add_scan
from gateway.cli.write import add_write
from gateway.i18n import tr

__all__ = ["add_commands", "cmd_device_plan", "cmd_device_read", "cmd_device_test"]


def cmd_device_plan(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.acquire import DevicePoller
    from gateway.modbus.planner import describe_plan, naive_plan

    devices = [d for d in cfg.devices if not args.device or d.name in args.device]
    if args.device and len(devices) != len(set(args.device)):
        err(tr(args.lang, "unknown_device", device=args.device, file=cfg.path,
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


def cmd_device_read(args: argparse.Namespace) -> int:
    from gateway.modbus.decode import decode_all_orders

    bus = bus_from_args(args)
    address = args.address - args.address_base
    most = 2000 if args.table in ("coil", "discrete") else 125  # one Modbus read's limit
    if args.count > most:
        raise UsageError(f"--count {args.count}: one read of {args.table} takes at most {most}")
    if not 0 <= address <= 0xFFFF - args.count + 1:
        raise UsageError(f"--address {args.address}: {args.count} from there run past the "
                         f"address space (0..65535 on the wire, --address-base "
                         f"{args.address_base})")
    with port_lock(bus, args) or nothing():
        try:
            words = asyncio.run(read_raw(bus, args.unit, args.table, address, args.count,
                                         args.lang))
        except DeviceError as exc:
            err(str(exc))
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
    print(f"{pad(tr(lang, 'h_address'), 7, True)}  {'hex':6}  {pad(tr(lang, 'h_raw'), 6, True)}"
          f"  {tr(lang, 'h_decoded')}")
    for r in rows:
        print(f"{r['address']:>7}  {r['hex']}  {r['raw']:>6}")
        for name, v in r["decoded"].items():
            print(f"{'':25s}{name:16s} {v:.6g}")
    return EXIT_OK


def cmd_device_test(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    numba_cache(cfg)
    from detectors.base import Quality
    from gateway.acquire import DevicePoller
    from gateway.clock import WallClock
    from gateway.modbus.client import make_client
    from gateway.modbus.planner import describe_plan

    lang = args.lang
    try:
        device = cfg.device(args.device)
    except KeyError:
        err(tr(lang, "unknown_device", device=args.device, file=cfg.path,
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

    with port_lock(bus, args) or nothing():
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
        print(f"  {pad(tr(lang, 'h_point'), 12)} {pad(tr(lang, 'h_quantity'), 18)} "
              f"{pad(tr(lang, 'h_value'), 12, True)} {'':6s} {tr(lang, 'h_quality')}")
        for r in rows:
            value = "-" if r["value"] is None else f"{r['value']:.4f}"
            print(f"  {r['point']:12s} {r['quantity']:18s} {value:>12s} {r['unit']:6s} "
                  f"{r['quality']}")
        errors = poller.stats.as_dict()["errors"]
        if errors:
            print(f"  errors: {errors}")
    return EXIT_OK if all(r["quality"] == "good" for r in rows) else EXIT_FAILED


def add_commands(sub) -> None:
    dsub = group_parser(sub, "device", "field device tools: scan, read, test, write, plan", [
        "minewatch device scan --port /dev/ttyUSB0",
        "minewatch device read --bus tcp://192.0.2.10:502 --unit 1 --address 0",
        "minewatch device test radar_wl1 --config site.toml"])
    add_scan(dsub)

    read = command_parser(dsub, "read", "raw registers decoded in every type and word order "
                          "side by side", """
  minewatch device read --bus tcp://192.0.2.10:502 --unit 1 --address 0 --count 4 --order all
  minewatch device read --port /dev/ttyUSB0 --baud 9600 --unit 2 --address 40101 \\
      --address-base 1 --count 2 --type float32
""", cmd_device_read)
    field_args(read, legacy=True)
    read.add_argument("--unit", type=number_arg(0, 255, integer=True), required=True)
    read.add_argument("--table", choices=["holding", "input", "coil", "discrete"],
                      default="holding")
    read.add_argument("--address", type=number_arg(0, 65536, integer=True), required=True,
                      help="as the manual prints it (see --address-base)")
    read.add_argument("--count", type=number_arg(1, 2000, integer=True), default=4)
    read.add_argument("--type", help="only this type (int16, uint32, float32 ...)")
    read.add_argument("--order", default="all", help="all, or one of ABCD CDAB BADC DCBA")

    test = command_parser(dsub, "test", "one poll of a configured device: values, units, "
                          "quality and the plan of requests", """
  minewatch device test radar_wl1 --config site.toml
  minewatch device test vw_logger_a --config site.toml --json
""", cmd_device_test)
    test.add_argument("device")
    test.add_argument("--config", required=True, type=Path)
    test.add_argument("--lock-dir", type=Path, help="folder of the serial port locks")
    add_write(dsub)

    plan = command_parser(dsub, "plan", "the read plan: merged Modbus requests per device", """
  minewatch device plan --config site.toml
  minewatch device plan --config site.toml vw_logger_a --json
""", cmd_device_plan)
    plan.add_argument("--config", required=True, type=Path)
    plan.add_argument("device", nargs="*", help="device names (default: all)")
