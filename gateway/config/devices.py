"""The field side of a site config: `[[buses]]` (Modbus TCP, RTU, RTU over TCP and their line
settings) and `[[devices]]` (unit id, profile, poll periods, timeouts, degrading), each checked
against the others, and the poll period every tailings item needs."""

from __future__ import annotations

from pathlib import Path

from gateway.config.model import Bus, Device, Point
from gateway.config.quantities import TAILINGS_ITEMS
from gateway.config.reader import Reader, table_array
from gateway.profiles import (
    WORD_ORDERS,
    DeviceProfile,
    ProfileError,
    find_profile,
    load_profile,
)

__all__ = ["BAUDRATES", "TRANSPORTS", "build_buses", "build_devices", "check_periods",
           "word_order"]

TRANSPORTS = ("tcp", "rtu", "rtu_over_tcp")
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
# GB 51108-2015 §4.5.4: tailings items are measured at least once a day.
TAILINGS_MAX_PERIOD = 86400.0


_BUS_KEYS = {"name", "transport", "host", "port", "serial_port", "baudrate", "parity", "stopbits",
             "bytesize", "timeout", "retries", "max_outstanding"}


def build_buses(doc: dict, r: Reader) -> list[Bus]:
    out: list[Bus] = []
    names: set[str] = set()
    for i, b in enumerate(table_array(doc, "buses", r)):
        p = f"buses[{i}]"
        r.known(b, _BUS_KEYS, p)
        name = r.get(b, "name", p, str, f"bus{i}", required=True)
        if name in names:
            r.problem(f"{p}.name", f"duplicate bus name {name!r}")
        names.add(name)
        transport = r.get(b, "transport", p, str, "tcp")
        if transport not in TRANSPORTS:
            r.problem(f"{p}.transport", f"unknown transport {transport!r}", f"one of {TRANSPORTS}")
        host = r.get(b, "host", p, str, None)
        port = r.get(b, "port", p, int, None)
        serial_port = r.get(b, "serial_port", p, str, None)
        if transport in ("tcp", "rtu_over_tcp"):
            if not host:
                r.problem(f"{p}.host", f"a {transport} bus needs a host")
            if port is None:
                r.problem(f"{p}.port", f"a {transport} bus needs a port")
            elif not 1 <= port <= 65535:
                r.problem(f"{p}.port", f"port {port} out of range 1..65535")
        elif transport == "rtu" and not serial_port:
            r.problem(f"{p}.serial_port", "an rtu bus needs a serial_port such as /dev/ttyS1")
        baud = r.get(b, "baudrate", p, int, 9600)
        if baud not in BAUDRATES:
            r.problem(f"{p}.baudrate", f"unusual baud rate {baud}", f"one of {BAUDRATES}")
        parity = r.get(b, "parity", p, str, "N")
        if parity not in ("N", "E", "O"):
            r.problem(f"{p}.parity", f"parity {parity!r}", "N, E or O")
        timeout = r.duration(b, "timeout", p, 1.0)
        # a bus is one connection and carries one request at a time (docs/contracts.md#bus):
        # independent Modbus TCP devices poll in parallel on buses of their own
        max_out = r.get(b, "max_outstanding", p, int, 1)
        if max_out != 1:
            r.problem(f"{p}.max_outstanding", f"max_outstanding = {max_out}: a bus is one "
                      "connection and carries one request at a time",
                      "set 1 or leave it out; give independent Modbus TCP devices a bus each "
                      "to poll them in parallel")
        out.append(Bus(
            name=name, transport=transport, host=host, port=port, serial_port=serial_port,
            baudrate=baud, parity=parity, stopbits=r.get(b, "stopbits", p, int, 1),
            bytesize=r.get(b, "bytesize", p, int, 8), timeout=timeout or 1.0,
            retries=r.get(b, "retries", p, int, 1), max_outstanding=max(1, max_out),
        ))
    return out


_DEVICE_KEYS = {"name", "bus", "unit", "profile", "period", "abnormal_period", "max_gap",
                "max_read", "timeout", "retries", "degrade_after", "degrade_time",
                "pause_after_connect", "pause_between_requests", "word_order"}


def build_devices(doc: dict, r: Reader, buses: dict[str, Bus], profile_dirs: list[Path]
             ) -> list[Device]:
    bus_names = set(buses)
    out: list[Device] = []
    names: set[str] = set()
    seen_units: dict[tuple[str, int], str] = {}
    profiles: dict[str, DeviceProfile] = {}
    for i, d in enumerate(table_array(doc, "devices", r)):
        p = f"devices[{i}]"
        r.known(d, _DEVICE_KEYS, p)
        name = r.get(d, "name", p, str, f"device{i}", required=True)
        if name in names:
            r.problem(f"{p}.name", f"duplicate device name {name!r}")
        names.add(name)
        bus = r.get(d, "bus", p, str, "", required=True)
        if bus and bus not in bus_names:
            r.problem(f"{p}.bus", f"unknown bus {bus!r}",
                      f"defined buses: {', '.join(sorted(bus_names)) or 'none'}")
        unit = r.get(d, "unit", p, int, 1, required=True)
        if not 1 <= unit <= 247:
            r.problem(f"{p}.unit", f"unit id {unit} out of range 1..247")
        if (bus, unit) in seen_units:
            r.problem(f"{p}.unit", f"unit id {unit} on bus {bus!r} is already used by device "
                      f"{seen_units[(bus, unit)]!r}", "every device on one bus needs its own unit id")
        seen_units[(bus, unit)] = name
        pname = r.get(d, "profile", p, str, "", required=True)
        profile = profiles.get(pname)
        if profile is None and pname:
            try:
                profile = load_profile(find_profile(pname, profile_dirs))
                profiles[pname] = profile
            except ProfileError as exc:
                r.problem(f"{p}.profile", str(exc))
        period = r.duration(d, "period", p, 600.0)
        if period is not None and period <= 0:
            r.problem(f"{p}.period", "must be greater than zero")
        abnormal = r.duration(d, "abnormal_period", p, None)
        if abnormal is not None and period and abnormal > period:
            r.problem(f"{p}.abnormal_period", f"{abnormal:g} s is slower than the normal period "
                      f"{period:g} s", "the abnormal state polls faster, not slower")
        max_read = r.get(d, "max_read", p, int, profile.max_read if profile else 125)
        if not 1 <= max_read <= 125:
            r.problem(f"{p}.max_read", f"{max_read} outside 1..125 registers per request")
        bus_cfg = buses.get(bus)
        timeout = r.duration(d, "timeout", p, bus_cfg.timeout if bus_cfg else 1.0)
        if timeout is not None and timeout <= 0:
            r.problem(f"{p}.timeout", "must be greater than zero")
        degrade_after = r.get(d, "degrade_after", p, int, 3)
        if degrade_after < 0:
            r.problem(f"{p}.degrade_after", "0 (never) or a number of failed polls")
        if profile is None:
            continue
        out.append(Device(
            name=name, bus=bus, unit=unit, profile=profile, period=period or 600.0,
            abnormal_period=abnormal if abnormal else min(period or 600.0, 300.0),
            max_gap=r.get(d, "max_gap", p, int, 8), max_read=max_read,
            timeout=timeout or 1.0,
            retries=r.get(d, "retries", p, int, bus_cfg.retries if bus_cfg else 1),
            degrade_after=degrade_after,
            degrade_time=r.duration(d, "degrade_time", p, 600.0) or 600.0,
            pause_after_connect=r.duration(d, "pause_after_connect", p, 0.0) or 0.0,
            pause_between_requests=r.duration(d, "pause_between_requests", p, 0.0) or 0.0,
            word_order=word_order(d, p, r),
        ))
    return out


def word_order(doc: dict, path: str, r: Reader) -> str | None:
    order = r.get(doc, "word_order", path, str, None)
    if order is not None and order not in WORD_ORDERS:
        r.problem(f"{path}.word_order", f"unknown word order {order!r}",
                  "ABCD (big endian), CDAB (word swap), BADC (byte swap), DCBA (both); "
                  "minewatch device read --order all shows them side by side")
        return None
    return order


def check_periods(devices: list[Device], points: list[Point], r: Reader, doc: dict) -> None:
    """GB 51108-2015 §4.5.4: a tailings item must be measured at least once a day."""
    tailings_devices = {p.device for p in points if p.quantity in TAILINGS_ITEMS}
    raw = table_array(doc, "devices", r) if isinstance(doc.get("devices"), list) else []
    for i, d in enumerate(devices):
        if d.name in tailings_devices and d.period > TAILINGS_MAX_PERIOD:
            idx = next((j for j, x in enumerate(raw) if x.get("name") == d.name), i)
            r.problem(f"devices[{idx}].period", f"{d.period:g} s is slower than once a day for a "
                      "device that measures tailings items",
                      "GB 51108-2015 §4.5.4 asks for 1 per 10 min ... 1 per 24 h")
