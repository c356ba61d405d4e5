"""`minewatch device scan`: which unit ids answer on a line, and at which serial settings. An
exception reply proves a device as well as data does; bytes that never make a frame are line
noise at the wrong settings, told apart from silence."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from gateway.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    command_parser,
    err,
    nothing,
    number_arg,
    pad,
)
from gateway.cli.field import (
    DeviceError,
    bus_from_args,
    field_args,
    line_settings,
    make_bus,
    open_line,
    parse_csv,
    parse_units,
    port_lock,
    read_words,
    where,
)
from gateway.i18n import exception_name, tr
from gateway.modbus.client import make_client

__all__ = ["add_scan", "cmd_device_scan"]


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

        client = make_client(bus, trace)
        entry = {"line": line_settings(bus), "baudrate": bus.baudrate if bus.transport == "rtu" else None,
                 "parity": bus.parity if bus.transport == "rtu" else None, "error": None,
                 "noise": False, "answered": 0}
        tried.append(entry)
        try:
            try:
                await open_line(client, bus, args.lang)
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
                    words = await read_words(client, unit, args.table, wire, 1, args.lang)
                    row.update(answer="registers", registers=words, exception_code=None)
                except DeviceError as exc:
                    if not exc.code:
                        # silence, or bytes that never made a frame: noise at other settings
                        if heard[0] > before:
                            entry["noise"] = True
                        if not client.connected:
                            # pymodbus drops a socket after a few silent requests
                            try:
                                await open_line(client, bus, args.lang)
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
    return {"bus": where(settings[0]), "table": args.table, "address": args.address,
            "units": [units[0], units[-1]] if units else [], "found": found, "tried": tried,
            "gateway_exceptions": gateway_answers}


def cmd_device_scan(args: argparse.Namespace) -> int:
    lang = args.lang
    units = parse_units(args.units)
    if not 0 <= args.address - args.address_base <= 0xFFFF:
        raise UsageError(f"--address {args.address}: outside the address space with "
                         f"--address-base {args.address_base}")
    base = bus_from_args(args)
    if base.transport == "rtu":
        bauds = parse_csv(args.baud, int, what="--baud")
        parities = parse_csv(args.parity, str, ("N", "E", "O"), "--parity")
        settings = [make_bus("rtu", None, None, base.serial_port, b, p, args.stopbits, args.timeout)
                    for b in bauds for p in parities]
    else:
        settings = [base]
    with port_lock(base, args) or nothing():
        if not args.json:
            print(tr(lang, "scan_start", where=where(base), units=args.units,
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
            err(t["error"])
        elif t["noise"]:
            print(tr(lang, "scan_noise", line=t["line"]))
    if found:
        print(f"{pad(tr(lang, 'h_unit'), 5, True)}  {pad(tr(lang, 'h_line'), 12)} "
              f"{pad(tr(lang, 'h_latency'), 7, True)}  {tr(lang, 'h_answer')}")
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


def add_scan(dsub) -> None:
    scan = command_parser(dsub, "scan", "which unit ids answer, and at which serial settings "
                          "(an exception reply also proves a device is there)", """
  minewatch device scan --port /dev/ttyUSB0
  minewatch device scan --port /dev/ttyUSB0 --baud 4800,9600,19200,38400 --parity N,E --units 1-32
  minewatch device scan --bus tcp://192.0.2.10:502 --units 1-10 --table input --address 0
""", cmd_device_scan)
    field_args(scan, scan=True, timeout=0.3)
    scan.add_argument("--units", default="1-247", help="unit ids to try: 1-247, or 1,2,10-20")
    scan.add_argument("--table", choices=["holding", "input", "coil", "discrete"],
                      default="holding", help="table of the probe read (default: holding)")
    scan.add_argument("--address", type=number_arg(0, 65536, integer=True), default=0, help="register of the probe read "
                      "(default: 0; a device that has none there answers exception 2, which "
                      "counts)")
