"""The field side of a site config: `[[buses]]` (Modbus TCP, RTU, RTU over TCP and their line
settings) and `[[devices]]` (unit id, profile, poll periods, timeouts, degrading), each checked
against the others, and the poll period every tailings item needs."""

from __future__ import annotations

from pathlib import Path

from gateway.config.model import Bus, Device, Point
from gateway.config.quantities import TAILINGS_ITEMS
from gateway.config.reader import Reader, table_array
from gateway.i18n import t
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
# What a poll may take. A period under 100 ms is a busy loop (the simulated clock's cap keeps
# polls at or above it too); one over a week is no monitoring. A request waits at most a
# minute (a satellite or 4G link answers in seconds; longer, a dead device holds its whole bus
# and every other device on it misses its period), and is retried at most 10 times.
PERIOD_RANGE = (0.1, 7 * 86400.0)
TIMEOUT_RANGE = (0.01, 60.0)


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
            r.problem(f"{p}.name", t(f"duplicate bus name {name!r}", f"总线名 {name!r} 重复"))
        names.add(name)
        transport = r.get(b, "transport", p, str, "tcp")
        if transport not in TRANSPORTS:
            r.problem(f"{p}.transport", t(f"unknown transport {transport!r}",
                                          f"未知的传输方式 {transport!r}"),
                      t(f"one of {TRANSPORTS}", f"可选：{TRANSPORTS}"))
        host = r.get(b, "host", p, str, None)
        port = r.get(b, "port", p, int, None)
        serial_port = r.get(b, "serial_port", p, str, None)
        if transport in ("tcp", "rtu_over_tcp"):
            if not host:
                r.problem(f"{p}.host", t(f"a {transport} bus needs a host",
                                         f"{transport} 总线需要 host"))
            if port is None:
                r.problem(f"{p}.port", t(f"a {transport} bus needs a port",
                                         f"{transport} 总线需要 port"))
            elif not 1 <= port <= 65535:
                r.problem(f"{p}.port", t(f"port {port} out of range 1..65535",
                                         f"端口 {port} 超出范围 1..65535"))
        elif transport == "rtu" and not serial_port:
            r.problem(f"{p}.serial_port", t("an rtu bus needs a serial_port such as /dev/ttyS1",
                                            "rtu 总线需要 serial_port，例如 /dev/ttyS1"))
        baud = r.get(b, "baudrate", p, int, 9600)
        if baud not in BAUDRATES:
            r.problem(f"{p}.baudrate", t(f"unusual baud rate {baud}", f"不常见的波特率 {baud}"),
                      t(f"one of {BAUDRATES}", f"可选：{BAUDRATES}"))
        parity = r.get(b, "parity", p, str, "N")
        if parity not in ("N", "E", "O"):
            r.problem(f"{p}.parity", t(f"parity {parity!r}", f"校验位 {parity!r} 无效"),
                      t("N, E or O", "N、E 或 O"))
        timeout = r.duration(b, "timeout", p, 1.0, lo=TIMEOUT_RANGE[0], hi=TIMEOUT_RANGE[1])
        # a bus is one connection and carries one request at a time (docs/contracts.md#bus):
        # independent Modbus TCP devices poll in parallel on buses of their own
        max_out = r.number(b, "max_outstanding", p, 1, 1, 32, integer=True)
        if max_out != 1:
            r.problem(f"{p}.max_outstanding",
                      t(f"max_outstanding = {max_out}: a bus is one connection and carries one "
                        "request at a time",
                        f"max_outstanding = {max_out}：一条总线是一个连接，一次只能有一个请求"),
                      t("set 1 or leave it out; give independent Modbus TCP devices a bus each "
                        "to poll them in parallel",
                        "设为 1 或不写；要并行轮询相互独立的 Modbus TCP 设备，请给每台设备一条总线"))
        out.append(Bus(
            name=name, transport=transport, host=host, port=port, serial_port=serial_port,
            baudrate=baud, parity=parity,
            stopbits=r.number(b, "stopbits", p, 1, 1, 2, integer=True),
            bytesize=r.number(b, "bytesize", p, 8, 7, 8, integer=True), timeout=timeout,
            retries=r.number(b, "retries", p, 1, 0, 10, integer=True),
            max_outstanding=max_out,
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
            r.problem(f"{p}.name", t(f"duplicate device name {name!r}", f"设备名 {name!r} 重复"))
        names.add(name)
        bus = r.get(d, "bus", p, str, "", required=True)
        if bus and bus not in bus_names:
            known = ", ".join(sorted(bus_names))
            r.problem(f"{p}.bus", t(f"unknown bus {bus!r}", f"未知的总线 {bus!r}"),
                      t(f"defined buses: {known or 'none'}", f"已定义的总线：{known or '无'}"))
        unit = r.get(d, "unit", p, int, 1, required=True)
        if not 1 <= unit <= 247:
            r.problem(f"{p}.unit", t(f"unit id {unit} out of range 1..247",
                                     f"站号 {unit} 超出范围 1..247"))
        if (bus, unit) in seen_units:
            other = seen_units[(bus, unit)]
            r.problem(f"{p}.unit", t(f"unit id {unit} on bus {bus!r} is already used by device "
                                     f"{other!r}", f"总线 {bus!r} 上的站号 {unit} 已被设备 "
                                     f"{other!r} 使用"),
                      t("every device on one bus needs its own unit id",
                        "同一总线上的每台设备需要各自的站号"))
        seen_units[(bus, unit)] = name
        pname = r.get(d, "profile", p, str, "", required=True)
        profile = profiles.get(pname)
        if profile is None and pname:
            try:
                profile = load_profile(find_profile(pname, profile_dirs))
                profiles[pname] = profile
            except ProfileError as exc:
                r.problem(f"{p}.profile", exc.text)
        period = r.duration(d, "period", p, 600.0, lo=PERIOD_RANGE[0], hi=PERIOD_RANGE[1])
        abnormal = r.duration(d, "abnormal_period", p, None, lo=PERIOD_RANGE[0],
                              hi=PERIOD_RANGE[1])
        if abnormal is not None and abnormal > period:
            r.problem(f"{p}.abnormal_period", t(f"{abnormal:g} s is slower than the normal "
                                                f"period {period:g} s",
                                                f"{abnormal:g} 秒比正常周期 {period:g} 秒还慢"),
                      t("the abnormal state polls faster, not slower", "异常状态下应更快地采集"))
        max_read = r.get(d, "max_read", p, int, profile.max_read if profile else 125)
        if not 1 <= max_read <= 125:
            r.problem(f"{p}.max_read", t(f"{max_read} outside 1..125 registers per request",
                                         f"{max_read} 超出每次请求 1..125 个寄存器的范围"))
        bus_cfg = buses.get(bus)
        timeout = r.duration(d, "timeout", p, bus_cfg.timeout if bus_cfg else 1.0,
                             lo=TIMEOUT_RANGE[0], hi=TIMEOUT_RANGE[1])
        degrade_after = r.number(d, "degrade_after", p, 3, 0, 10_000, integer=True)
        # a device skipped longer than an hour between probes is a sensor nobody reads
        degrade_time = r.duration(d, "degrade_time", p, 600.0, lo=1.0, hi=3600.0)
        if profile is None:
            continue
        out.append(Device(
            name=name, bus=bus, unit=unit, profile=profile, period=period,
            abnormal_period=abnormal if abnormal else min(period, 300.0),
            max_gap=r.number(d, "max_gap", p, 8, 0, 125, integer=True), max_read=max_read,
            timeout=timeout,
            retries=r.number(d, "retries", p, bus_cfg.retries if bus_cfg else 1, 0, 10,
                             integer=True),
            degrade_after=degrade_after,
            degrade_time=degrade_time,
            pause_after_connect=r.duration(d, "pause_after_connect", p, 0.0, hi=60.0),
            pause_between_requests=r.duration(d, "pause_between_requests", p, 0.0, hi=10.0),
            word_order=word_order(d, p, r),
        ))
    return out


def word_order(doc: dict, path: str, r: Reader) -> str | None:
    order = r.get(doc, "word_order", path, str, None)
    if order is not None and order not in WORD_ORDERS:
        r.problem(f"{path}.word_order", t(f"unknown word order {order!r}",
                                          f"未知的字节序 {order!r}"),
                  t("ABCD (big endian), CDAB (word swap), BADC (byte swap), DCBA (both); "
                    "minewatch device read --order all shows them side by side",
                    "ABCD（大端）、CDAB（字交换）、BADC（字节交换）、DCBA（两者都换）；"
                    "minewatch device read --order all 可并排显示"))
        return None
    return order


def check_periods(devices: list[Device], points: list[Point], r: Reader, doc: dict) -> None:
    """GB 51108-2015 §4.5.4: a tailings item must be measured at least once a day."""
    tailings_devices = {p.device for p in points if p.quantity in TAILINGS_ITEMS}
    raw = table_array(doc, "devices", r) if isinstance(doc.get("devices"), list) else []
    for i, d in enumerate(devices):
        if d.name in tailings_devices and d.period > TAILINGS_MAX_PERIOD:
            idx = next((j for j, x in enumerate(raw) if x.get("name") == d.name), i)
            r.problem(f"devices[{idx}].period", t(
                f"{d.period:g} s is slower than once a day for a device that measures tailings "
                "items", f"{d.period:g} 秒：测量尾矿库监测项目的设备每天至少采集一次"),
                t("GB 51108-2015 §4.5.4 asks for 1 per 10 min ... 1 per 24 h",
                  "GB 51108-2015 §4.5.4 要求 10 分钟 1 次至 24 小时 1 次"))
