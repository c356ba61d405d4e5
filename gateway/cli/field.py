"""The field line of the device commands: where the devices are (--bus URL, --port PATH and the
serial settings), the serial port's lock, and a device's failure as one message. Talking to the
device is gateway/modbus/client.py's, the daemon's own client."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli import common as cli_common
from gateway.cli.common import UsageError, number_arg
from gateway.i18n import exception_name, tr
from gateway.modbus.client import (
    ModbusFailure,
    connect,
    make_client,
    read_table,
    write_registers,
)

__all__ = ["DeviceError", "bus_from_args", "device_error", "field_args", "line_settings",
           "make_bus", "open_line", "parse_bus", "parse_csv", "parse_units", "port_lock",
           "read_raw", "read_words", "where", "write_words"]


def parse_bus(text: str):
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
    if transport is None or not (port.isascii() and port.isdigit()):
        raise UsageError(f"--bus {text!r}: use tcp://HOST:PORT, rtu-over-tcp://HOST:PORT, "
                         "rtu:///dev/ttyUSB0 or --port /dev/ttyUSB0")
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"--bus {text!r}: port {int(port)} out of range 1..65535")
    return transport, host or "127.0.0.1", int(port), None


def make_bus(transport: str, host, port, serial_port, baudrate: int = 9600, parity: str = "N",
             stopbits: int = 1, timeout: float = 1.0):
    from gateway.config.model import Bus

    return Bus("cli", transport, host, port, serial_port, baudrate, parity, stopbits, 8,
               timeout, 0, 1)


def bus_from_args(args: argparse.Namespace, baudrate: int | None = None,
                  parity: str | None = None):
    """A Bus for ad-hoc commissioning: --bus URL, --port PATH, or --tcp/--rtu-over-tcp/--serial."""
    baud = baudrate if baudrate is not None else getattr(args, "baudrate", 9600)
    par = parity if parity is not None else getattr(args, "parity", "N")
    stop = getattr(args, "stopbits", 1)
    if getattr(args, "bus", None):
        transport, host, port, serial_port = parse_bus(args.bus)
    elif getattr(args, "port", None):
        transport, host, port, serial_port = "rtu", None, None, args.port
    elif getattr(args, "serial", None):
        transport, host, port, serial_port = "rtu", None, None, args.serial
    else:
        transport, host, port, serial_port = parse_bus(
            ("tcp://" + args.tcp) if getattr(args, "tcp", None)
            else "rtu-over-tcp://" + args.rtu_over_tcp)
    return make_bus(transport, host, port, serial_port, baud, par, stop, args.timeout)


def where(bus) -> str:
    if bus.transport == "rtu":
        return bus.serial_port
    scheme = "tcp" if bus.transport == "tcp" else "rtu-over-tcp"
    return f"{scheme}://{bus.host}:{bus.port}"


def line_settings(bus) -> str:
    """9600 8N1, or the transport for a socket."""
    if bus.transport != "rtu":
        return "tcp" if bus.transport == "tcp" else "rtu/tcp"
    return f"{bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"


def port_lock(bus, args: argparse.Namespace, fallback_dir: Path | None = None):
    """The serial port's lock for this command (None on a socket); raises SerialPortBusy."""
    if bus.transport != "rtu":
        return None
    from gateway.serial_lock import lock_serial_port

    return lock_serial_port(bus.serial_port, command=cli_common.invocation,
                            directory=getattr(args, "lock_dir", None), fallback_dir=fallback_dir)


class DeviceError(RuntimeError):
    """No answer, or an exception reply; `code` is the Modbus exception code (0: no answer)."""

    def __init__(self, text: str, code: int = 0):
        super().__init__(text)
        self.code = code


async def open_line(client, bus, lang: str) -> None:
    """Connect (unless connected); DeviceError says why not, with the line's settings."""
    why = await connect(client, bus)
    if why is not None:
        raise DeviceError(tr(lang, "cannot_open" if bus.transport == "rtu" else "cannot_connect",
                             where=where(bus), port=bus.serial_port, line=line_settings(bus),
                             error=why) + ("" if bus.transport == "rtu" else f": {why}"))


def device_error(failure: ModbusFailure, unit: int, what: str, lang: str) -> DeviceError:
    """A failed exchange in the field engineer's words: an exception reply by its code and
    name, a malformed reply, or silence."""
    if failure.exception_reply:
        return DeviceError(tr(lang, "exc_reply", unit=unit, code=failure.code,
                              name=exception_name(failure.code, lang), what=what), failure.code)
    if failure.kind == "malformed":
        return DeviceError(tr(lang, "malformed_reply", unit=unit, detail=failure.cause))
    return DeviceError(tr(lang, "no_answer", unit=unit, detail=failure.cause))


async def read_words(client, unit: int, table: str, address: int, count: int,
                     lang: str = "en") -> list[int]:
    """Registers (or bits) of one read; DeviceError names an exception or the silence."""
    try:
        return await read_table(client, unit, table, address, count)
    except ModbusFailure as failure:
        raise device_error(failure, unit, f"{table} register {address} count {count}",
                           lang) from None


async def write_words(client, unit: int, address: int, words: list[int], fc16: bool,
                      lang: str) -> None:
    """Write holding registers (FC06 for one, FC16 for more or with --fc16); DeviceError."""
    try:
        await write_registers(client, unit, address, words, fc16)
    except ModbusFailure as failure:
        raise device_error(failure, unit, f"write of holding register {address}",
                           lang) from None


async def read_raw(bus, unit: int, table: str, address: int, count: int, lang: str = "en"):
    client = make_client(bus)
    try:
        await open_line(client, bus, lang)
        return await read_words(client, unit, table, address, count, lang)
    finally:
        client.close()


def parse_units(text: str) -> list[int]:
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


def parse_csv(text: str, kind, allowed=None, what: str = "") -> list:
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


def field_args(p: argparse.ArgumentParser, *, legacy: bool = False, scan: bool = False,
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
    p.add_argument("--timeout", type=number_arg(0.01, 60.0), default=timeout,
                   help=f"seconds per request "
                   f"(default: {timeout:g})")
    p.add_argument("--address-base", type=int, choices=[0, 1], default=0,
                   help="1 if the manual counts registers from 1 (4xxxx style)")
    p.add_argument("--lock-dir", type=Path, help="folder of the serial port locks (default: "
                   "$MINEWATCH_LOCK_DIR, else /run/lock)")


