"""`minewatch device write`: a commissioning write of one value (an installation height, a unit
id, a baud rate), shown, confirmed, written and read back. The daemon never writes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    command_parser,
    err,
    nothing,
    number_arg,
)
from gateway.cli.field import (
    DeviceError,
    bus_from_args,
    field_args,
    open_line,
    port_lock,
    read_words,
    where,
    write_words,
)
from gateway.i18n import tr
from gateway.modbus.client import make_client
from gateway.modbus.encode import ENCODABLE_TYPES, encode_value

__all__ = ["add_write", "cmd_device_write"]


def _decoded(words: list[int], dtype: str, order: str) -> float:
    from gateway.modbus.decode import decode_words

    return float(decode_words([words], dtype, order)[0])


def _hex(words: list[int]) -> str:
    return " ".join(f"0x{w:04X}" for w in words)


def cmd_device_write(args: argparse.Namespace) -> int:
    """A commissioning write: shown, confirmed, written, read back. The daemon never writes."""
    lang = args.lang
    bus = bus_from_args(args)
    try:
        words = encode_value(args.value, args.type, args.order)
    except ValueError:
        err(tr(lang, "bad_value", value=args.value, type=args.type))
        return EXIT_CONFIG
    wire = args.address - args.address_base
    if not 0 <= wire <= 0x10000 - len(words):
        err(f"--address {args.address}: {len(words)} register(s) from there run past the "
            f"address space (0..65535 on the wire, --address-base {args.address_base})")
        return EXIT_CONFIG
    value = _decoded(words, args.type, args.order)
    plan = tr(lang, "write_plan", unit=args.unit, table="holding", address=args.address,
              wire=wire, value=f"{value:g}", type=args.type, order=args.order, words=_hex(words))
    report: dict = {"bus": where(bus), "unit": args.unit, "table": "holding",
                    "address": args.address, "wire_address": wire, "type": args.type,
                    "order": args.order, "value": value, "words": words, "before": None,
                    "written": False, "read_back": None, "verified": False, "error": None}

    def done(code: int, message: str | None = None) -> int:
        if message:
            report["error"] = report["error"] or message
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
        if message and (code or args.json):
            err(message)  # stdout stays one JSON document
        elif message:
            print(message)
        return code

    interactive = sys.stdin.isatty()
    if not args.yes and not interactive:
        print(plan, file=sys.stderr)
        return done(EXIT_CONFIG, tr(lang, "write_refused_tty"))
    with port_lock(bus, args) or nothing():
        return done(*asyncio.run(_write_session(args, bus, words, wire, value, plan, report)))


async def _write_session(args: argparse.Namespace, bus, words: list[int], wire: int,
                         value: float, plan: str, report: dict) -> tuple[int, str]:
    """Read the current value, ask (unless --yes), write, read back: (exit code, message)."""
    lang = args.lang
    client = make_client(bus)
    try:
        try:
            await open_line(client, bus, lang)
            if not args.no_verify:
                report["before"] = await read_words(client, args.unit, "holding", wire,
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
            await write_words(client, args.unit, wire, words, args.fc16, lang)
        except DeviceError as exc:
            report["exception_code"] = exc.code or None
            hint = f"\n  {tr(lang, 'write_hint_fc')}" if exc.code == 1 else ""
            return EXIT_FAILED, tr(lang, "write_failed", error=exc) + hint
        report["written"] = True
        if args.no_verify:
            return EXIT_OK, tr(lang, "write_acked")
        try:
            back = await read_words(client, args.unit, "holding", wire, len(words), lang)
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


def add_write(dsub) -> None:
    write = command_parser(dsub, "write", "commissioning write of one value (installation "
                           "height, unit id, baud rate): shown, confirmed, read back", """
  minewatch device write --port /dev/ttyUSB0 --unit 1 --address 5 --value 2000
        (asks before writing; the radar's installation height in cm)
  minewatch device write --bus tcp://192.0.2.10:502 --unit 3 --address 40011 \\
      --address-base 1 --value 12.5 --type float32 --order CDAB --yes
""", cmd_device_write)
    field_args(write)
    write.add_argument("--unit", type=number_arg(1, 255, integer=True), required=True)
    write.add_argument("--address", type=number_arg(0, 65536, integer=True), required=True,
                       help="holding register as the manual prints it (see --address-base)")
    write.add_argument("--value", required=True, help="the value (0x... for hex integers)")
    write.add_argument("--type", default="uint16", choices=sorted(ENCODABLE_TYPES))
    write.add_argument("--order", default="ABCD", choices=["ABCD", "CDAB", "BADC", "DCBA"])
    write.add_argument("--fc16", action="store_true", help="write one register with FC16 "
                       "(default FC06) for devices that only take FC16")
    write.add_argument("--yes", action="store_true", help="write without asking")
    write.add_argument("--no-verify", action="store_true", help="skip reading before and after "
                       "(for a register that cannot be read back, or a unit id change)")
