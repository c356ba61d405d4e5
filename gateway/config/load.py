"""Load and validate a site config TOML file into the immutable model of `gateway.config.model`.

Every problem is collected (not just the first) and reported with the file, the line where it can
be found, the key path and, where it helps, a hint. A config that has any error is never returned,
so a bad file can never replace a good one.
"""

from __future__ import annotations

import math
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detectors.registry import DETECTORS, detectors_for
from gateway.config.model import (
    LEVELS,
    AlertPolicy,
    Bus,
    Conversion,
    Device,
    Formula,
    GatewayIdentity,
    InfluxStorage,
    LevelSet,
    MqttUplink,
    Outbox,
    Point,
    Site,
    SiteConfig,
    Thresholds,
)
from gateway.config.quantities import DERIVED_LEVELS, QUANTITIES, TAILINGS_ITEMS
from gateway.profiles import (
    WORD_ORDERS,
    DeviceProfile,
    ProfileError,
    find_profile,
    load_profile,
)

__all__ = ["ConfigError", "Problem", "load_site", "parse_duration"]

SITE_KINDS = ("tailings_pond", "underground_mine", "open_pit", "chemical_plant", "metallurgy")
TRANSPORTS = ("tcp", "rtu", "rtu_over_tcp")
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
CONVERSIONS = {
    "none": ((), ()),
    "linear": ((), ("scale", "offset")),
    "radar_level": (("mount_elevation",), ()),
    "vibrating_wire": (
        ("k", "f0", "install_elevation"),
        ("t0", "b", "temperature_channel", "mouth_elevation", "barometer", "q0",
         "barometer_max_age", "barometer_sign"),
    ),
    "horizontal": (("y_channel",), ()),  # GNSS: sqrt(x^2 + y^2), x is the point's channel
    "rain_counter": (("window",), ("wrap",)),  # rolling sum of a cumulative rain counter
}
_CHANNEL_PARAMS = {"temperature_channel", "y_channel"}
_POINT_PARAMS = {"barometer"}  # the name of another point (on any device)
# per-point detectors of the live path (river's model spans a whole site, not a point)
LIVE_DETECTORS = frozenset(DETECTORS) - {"river_hst"}
_DURATION_PARAMS = {"window", "barometer_max_age"}
# GB 51108-2015 §4.5.4: tailings items are measured at least once a day.
TAILINGS_MAX_PERIOD = 86400.0


@dataclass(frozen=True)
class Problem:
    path: str  # key path, e.g. points[2].thresholds.red
    message: str
    line: int | None = None
    hint: str = ""

    def render(self, file: Path) -> str:
        where = f"{file}:{self.line}" if self.line else f"{file}"
        text = f"{where}: {self.path}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(ValueError):
    """The config file has problems; `problems` lists all of them."""

    def __init__(self, file: Path, problems: list[Problem]):
        self.file = file
        self.problems = problems
        lines = "\n".join("  " + p.render(file) for p in problems)
        super().__init__(f"{file}: {len(problems)} problem(s) in the site config:\n{lines}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0,
                 "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as '500ms', '30s', '10min', '1h', '2d'."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    raise ValueError(f"expected a duration such as 30, '30s', '10min', '1h', got {value!r}")


class _Locator:
    """Finds the line of a key path in the TOML text (best effort: tomllib keeps no positions)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line(self, path: str) -> int | None:
        parts = re.findall(r"([A-Za-z_][\w-]*)(?:\[(\d+)\])?", path)
        start, end = 0, len(self.lines)
        prefix: list[str] = []
        found: int | None = None
        for name, idx in parts:
            prefix.append(name)
            header_arr = re.compile(r"^\s*\[\[\s*" + r"\.".join(map(re.escape, prefix)) + r"\s*\]\]")
            header_tab = re.compile(r"^\s*\[\s*" + r"\.".join(map(re.escape, prefix)) + r"\s*\]")
            key_line = re.compile(r"^\s*" + re.escape(name) + r"\s*=")
            inline = re.compile(r"[{,]\s*" + re.escape(name) + r"\s*=")
            if idx:
                hits = [i for i in range(start, end) if header_arr.match(self.lines[i])]
                n = int(idx)
                if n < len(hits):
                    start = hits[n]
                    nxt = [i for i in range(start + 1, end) if re.match(r"^\s*\[\[", self.lines[i])
                           and header_arr.match(self.lines[i])]
                    end = nxt[0] if nxt else end
                    found = start + 1
                    continue
                return found
            hit = next((i for i in range(start, end) if header_tab.match(self.lines[i])), None)
            if hit is None:
                hit = next((i for i in range(start, end)
                            if key_line.match(self.lines[i]) or inline.search(self.lines[i])), None)
            if hit is None:
                return found
            found = hit + 1
            start = hit
        return found


class _Reader:
    """Typed access to one TOML table that records problems instead of raising."""

    def __init__(self, problems: list[Problem], locator: _Locator):
        self.problems = problems
        self.loc = locator

    def problem(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(path, message, self.loc.line(path), hint))

    def table(self, doc: dict, key: str, path: str, required: bool = False) -> dict:
        value = doc.get(key)
        if value is None:
            if required:
                self.problem(path, "missing table")
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a table, got {type(value).__name__}")
            return {}
        return value

    def known(self, doc: dict, keys: set[str], path: str) -> None:
        for k in doc:
            if k not in keys:
                close = [c for c in keys if _similar(c, k)]
                hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(keys))}"
                self.problem(f"{path}.{k}" if path else k, "unknown key", hint)

    def get(self, doc: dict, key: str, path: str, kind, default=None, required: bool = False):
        full = f"{path}.{key}" if path else key
        if key not in doc:
            if required:
                self.problem(full, "missing key")
            return default
        value = doc[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            names = " or ".join("number" if k is float else k.__name__ for k in kinds)
            self.problem(full, f"expected {names}, got {type(value).__name__} {value!r}")
            return default
        return value

    def duration(self, doc: dict, key: str, path: str, default: float | None,
                 required: bool = False) -> float | None:
        full = f"{path}.{key}" if path else key
        if key not in doc:
            if required:
                self.problem(full, "missing key")
            return default
        try:
            seconds = parse_duration(doc[key])
        except ValueError as exc:
            self.problem(full, str(exc))
            return default
        if seconds < 0:
            self.problem(full, "must not be negative")
            return default
        return seconds


def _similar(a: str, b: str) -> bool:
    if a == b:
        return False
    if a.replace("_", "") == b.replace("_", "") or a.lower() == b.lower():
        return True
    # one edit apart
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def load_site(path: str | Path) -> SiteConfig:
    """Read, check and freeze a site config; raise `ConfigError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [Problem("", f"cannot read file: {exc.strerror}")]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            path, [Problem("", f"not valid TOML: {exc}", int(m.group(1)) if m else None)]
        ) from None
    problems: list[Problem] = []
    r = _Reader(problems, _Locator(text))
    cfg = _build(path, doc, r)
    if problems:
        raise ConfigError(path, problems)
    assert cfg is not None
    return cfg


_TOP_KEYS = {"site", "gateway", "buses", "devices", "points", "uplink", "storage", "outbox",
             "alerts", "profiles_dir", "detector_defaults"}


def _build(path: Path, doc: dict, r: _Reader) -> SiteConfig | None:
    base_dir = path.resolve().parent
    r.known(doc, _TOP_KEYS, "")

    s = r.table(doc, "site", "site", required=True)
    r.known(s, {"code", "name", "kind", "timezone"}, "site")
    kind = r.get(s, "kind", "site", str, "tailings_pond")
    if kind not in SITE_KINDS:
        r.problem("site.kind", f"unknown site kind {kind!r}", f"one of {', '.join(SITE_KINDS)}")
    tz = r.get(s, "timezone", "site", str, "Asia/Shanghai")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        r.problem("site.timezone", f"unknown time zone {tz!r}", "an IANA name such as Asia/Shanghai")
    site = Site(
        code=r.get(s, "code", "site", str, "", required=True),
        name=r.get(s, "name", "site", str, ""),
        kind=kind,
        timezone=tz,
    )

    g = r.table(doc, "gateway", "gateway", required=True)
    r.known(g, {"id", "state_dir", "listen"}, "gateway")
    gw_id = r.get(g, "id", "gateway", str, "", required=True)
    if gw_id and not re.fullmatch(r"[A-Za-z0-9_.-]+", gw_id):
        r.problem("gateway.id", f"{gw_id!r} is not usable in an MQTT topic",
                  "letters, digits, '_', '.', '-'")
    if site.code and not re.fullmatch(r"[A-Za-z0-9_.-]+", site.code):
        r.problem("site.code", f"{site.code!r} is not usable in an MQTT topic",
                  "letters, digits, '_', '.', '-'")
    state_dir = base_dir / r.get(g, "state_dir", "gateway", str, "state")
    listen_text = r.get(g, "listen", "gateway", str, "127.0.0.1:9108")
    listen: tuple[str, int] | None = None
    if listen_text != "off":
        host, _, port_text = listen_text.rpartition(":")
        if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            r.problem("gateway.listen", f"{listen_text!r} is not HOST:PORT",
                      "for example \"127.0.0.1:9108\", or \"off\"")
        else:
            listen = (host, int(port_text))
    gateway = GatewayIdentity(id=gw_id, state_dir=state_dir, listen=listen)

    profile_dirs = [base_dir / "profiles", base_dir.parent / "profiles"]
    extra = r.get(doc, "profiles_dir", "", str, None)
    if extra:
        profile_dirs.insert(0, base_dir / extra)

    buses = _buses(doc, r)
    devices = _devices(doc, r, {b.name: b for b in buses}, profile_dirs)
    points = _points(doc, r, {d.name: d for d in devices})
    _check_periods(devices, points, r, doc)

    up = r.table(doc, "uplink", "uplink")
    r.known(up, {"mqtt"}, "uplink")
    mqtt = _mqtt(r.table(up, "mqtt", "uplink.mqtt"), r, base_dir, site, gateway) if "mqtt" in up else None
    st = r.table(doc, "storage", "storage")
    r.known(st, {"influx"}, "storage")
    influx = None
    if "influx" in st:
        i = r.table(st, "influx", "storage.influx")
        r.known(i, {"url", "org", "bucket", "token_file", "spool_path", "spool_max_bytes",
                    "batch_lines", "flush_interval", "timeout", "retry_max"}, "storage.influx")
        tf = r.get(i, "token_file", "storage.influx", str, None)
        sp = r.get(i, "spool_path", "storage.influx", str, None)
        influx = InfluxStorage(
            url=r.get(i, "url", "storage.influx", str, "", required=True),
            org=r.get(i, "org", "storage.influx", str, "minewatch"),
            bucket=r.get(i, "bucket", "storage.influx", str, "minewatch"),
            token_file=base_dir / tf if tf else None,
            spool_path=(base_dir / sp) if sp else state_dir / "influx_spool.sqlite",
            spool_max_bytes=_positive(r, i, "spool_max_bytes", int, 64 * 1024 * 1024),
            batch_lines=_positive(r, i, "batch_lines", int, 5000),
            flush_interval=_positive(r, i, "flush_interval", float, 1.0),
            timeout=_positive(r, i, "timeout", float, 10.0),
            retry_max=_positive(r, i, "retry_max", float, 60.0),
        )
    ob = r.table(doc, "outbox", "outbox")
    r.known(ob, {"path", "max_bytes"}, "outbox")
    ob_path = r.get(ob, "path", "outbox", str, None)
    outbox = Outbox(
        path=(base_dir / ob_path) if ob_path else state_dir / "outbox.sqlite",
        max_bytes=r.get(ob, "max_bytes", "outbox", int, 256 * 1024 * 1024),
    )
    alerts = _alerts(r.table(doc, "alerts", "alerts"), r)
    if r.problems:
        return None
    return SiteConfig(path=path, site=site, gateway=gateway, buses=tuple(buses),
                      devices=tuple(devices), points=tuple(points), mqtt=mqtt, influx=influx,
                      outbox=outbox, alerts=alerts)


def _alerts(a: dict, r: _Reader) -> AlertPolicy:
    p = "alerts"
    r.known(a, {"storm_raises", "storm_window", "storm_hold", "fault_after", "repair_warning",
                "repair_limit"}, p)
    d = AlertPolicy()
    policy = AlertPolicy(
        storm_raises=r.get(a, "storm_raises", p, int, d.storm_raises),
        storm_window=r.duration(a, "storm_window", p, d.storm_window),
        storm_hold=r.duration(a, "storm_hold", p, d.storm_hold),
        fault_after=r.get(a, "fault_after", p, int, d.fault_after),
        repair_warning=r.duration(a, "repair_warning", p, d.repair_warning),
        repair_limit=r.duration(a, "repair_limit", p, d.repair_limit),
    )
    if policy.storm_raises < 2:
        r.problem(f"{p}.storm_raises", "needs at least 2 raises to call a point flapping")
    if policy.fault_after < 1:
        r.problem(f"{p}.fault_after", "needs at least 1 poll")
    if policy.repair_warning > policy.repair_limit:
        r.problem(f"{p}.repair_warning", "comes after repair_limit")
    return policy


def _array(doc: dict, key: str, r: _Reader) -> list[dict]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        r.problem(key, f"expected an array of tables ([[{key}]]), got {type(value).__name__}")
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            r.problem(f"{key}[{i}]", "expected a table")
            continue
        out.append(item)
    return out


_BUS_KEYS = {"name", "transport", "host", "port", "serial_port", "baudrate", "parity", "stopbits",
             "bytesize", "timeout", "retries", "max_outstanding"}


def _buses(doc: dict, r: _Reader) -> list[Bus]:
    out: list[Bus] = []
    names: set[str] = set()
    for i, b in enumerate(_array(doc, "buses", r)):
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
        # one request at a time on anything that ends in a serial line (docs/contracts.md#bus)
        default_out = 4 if transport == "tcp" else 1
        max_out = r.get(b, "max_outstanding", p, int, default_out)
        if transport != "tcp" and max_out != 1:
            r.problem(f"{p}.max_outstanding", "a serial line carries one request at a time",
                      "set 1 or leave it out")
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


def _devices(doc: dict, r: _Reader, buses: dict[str, Bus], profile_dirs: list[Path]
             ) -> list[Device]:
    bus_names = set(buses)
    out: list[Device] = []
    names: set[str] = set()
    seen_units: dict[tuple[str, int], str] = {}
    profiles: dict[str, DeviceProfile] = {}
    for i, d in enumerate(_array(doc, "devices", r)):
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
            word_order=_word_order(d, p, r),
        ))
    return out


_POINT_KEYS = {"name", "quantity", "unit", "device", "channel", "conversion", "thresholds",
               "detectors", "description", "plausible_min", "plausible_max", "word_order",
               "formula", "deadband", "max_silence", "detector"}
FORMULAS = {"difference": ("minuend", "subtrahend")}


def _word_order(doc: dict, path: str, r: _Reader) -> str | None:
    order = r.get(doc, "word_order", path, str, None)
    if order is not None and order not in WORD_ORDERS:
        r.problem(f"{path}.word_order", f"unknown word order {order!r}",
                  "ABCD (big endian), CDAB (word swap), BADC (byte swap), DCBA (both); "
                  "minewatch device read --order all shows them side by side")
        return None
    return order
_THRESHOLD_KEYS = {"direction", *LEVELS, "restore", "deadband", "debounce", "hold",
                   "clear_samples", "clear_hold", "red_immediate", "upper", "lower"}


def _points(doc: dict, r: _Reader, devices: dict[str, Device]) -> list[Point]:
    out: list[Point] = []
    names: set[str] = set()
    quantity_defaults = _detector_defaults(doc, r)
    for i, pt in enumerate(_array(doc, "points", r)):
        p = f"points[{i}]"
        r.known(pt, _POINT_KEYS, p)
        name = r.get(pt, "name", p, str, f"point{i}", required=True)
        if name in names:
            r.problem(f"{p}.name", f"duplicate point name {name!r}")
        names.add(name)
        quantity = r.get(pt, "quantity", p, str, "generic", required=True)
        qinfo = QUANTITIES.get(quantity)
        if qinfo is None:
            r.problem(f"{p}.quantity", f"unknown quantity {quantity!r}",
                      f"one of {', '.join(sorted(QUANTITIES))}")
        unit = r.get(pt, "unit", p, str, qinfo.unit if qinfo else "")
        formula = _formula(pt, p, r) if "formula" in pt else None
        if formula is not None and ("device" in pt or "channel" in pt):
            r.problem(p, "a point with a formula has no device or channel of its own")
        dev_name = r.get(pt, "device", p, str, "", required=formula is None)
        device = devices.get(dev_name)
        if dev_name and device is None:
            r.problem(f"{p}.device", f"unknown device {dev_name!r}",
                      f"defined devices: {', '.join(sorted(devices)) or 'none'}")
        channel = r.get(pt, "channel", p, str, "", required=formula is None)
        if device is not None and channel:
            names_in_profile = {reg.name for reg in device.profile.registers}
            if channel not in names_in_profile:
                r.problem(f"{p}.channel", f"device {dev_name!r} (profile "
                          f"{device.profile.name!r}) has no register {channel!r}",
                          f"registers: {', '.join(sorted(names_in_profile))}")
        conversion = _conversion(pt, p, r, device)
        direction_default = qinfo.direction if qinfo else "upper"
        thresholds = None
        if "thresholds" in pt:
            thresholds = _thresholds(r.table(pt, "thresholds", f"{p}.thresholds"),
                                     f"{p}.thresholds", r, direction_default)
        elif quantity in DERIVED_LEVELS:
            # a standard gives this quantity's levels: a new site is armed from day one
            derived = _thresholds(dict(DERIVED_LEVELS[quantity]), f"{p}.thresholds", r,
                                  direction_default)
            thresholds = replace(derived, derived=True) if derived is not None else None
        default = list(detectors_for(quantity)) if qinfo else ["threshold", "stuck"]
        detectors = r.get(pt, "detectors", p, list, default)
        if not all(isinstance(x, str) for x in detectors):
            r.problem(f"{p}.detectors", "expected a list of detector names")
            detectors = default
        unknown_det = [x for x in detectors if x not in LIVE_DETECTORS]
        if unknown_det:
            r.problem(f"{p}.detectors", f"unknown detector(s) {unknown_det}",
                      f"one of {', '.join(sorted(LIVE_DETECTORS))}")
        own = _detector_tables(r.table(pt, "detector", f"{p}.detector"), f"{p}.detector", r)
        unused = sorted(set(own) - set(detectors))
        if unused:
            r.problem(f"{p}.detector.{unused[0]}", f"parameters for {unused[0]!r}, which this "
                      f"point does not run", f"its detectors: {', '.join(detectors)}")
        params = {d: {**quantity_defaults.get(quantity, {}).get(d, {}), **own.get(d, {})}
                  for d in detectors}
        out.append(Point(
            name=name, index=len(out), quantity=quantity, unit=unit, device=dev_name,
            channel=channel, conversion=conversion, thresholds=thresholds,
            detectors=tuple(detectors), description=r.get(pt, "description", p, str, ""),
            plausible_min=r.get(pt, "plausible_min", p, float, None),
            plausible_max=r.get(pt, "plausible_max", p, float, None),
            word_order=_word_order(pt, p, r), formula=formula,
            deadband=r.get(pt, "deadband", p, float, 0.0),
            max_silence=r.duration(pt, "max_silence", p, 3600.0) or 3600.0,
            detector_params=tuple((d, tuple(sorted(v.items()))) for d, v in params.items() if v),
        ))
    by_name = {p.name: p for p in out}
    for i, p in enumerate(out):
        for name in p.formula.inputs if p.formula else ():
            src = by_name.get(name)
            if src is None:
                r.problem(f"points[{i}].formula", f"input point {name!r} is not defined")
            elif src.formula is not None:
                r.problem(f"points[{i}].formula", f"input point {name!r} is itself a formula",
                          "formulas take measured points as inputs")
        baro = p.conversion.params.get("barometer")
        if baro is not None:
            src = by_name.get(baro)
            if src is None:
                r.problem(f"points[{i}].conversion.barometer", f"point {baro!r} is not defined")
            elif src.quantity != "barometric_pressure" or src.formula is not None:
                r.problem(f"points[{i}].conversion.barometer",
                          f"point {baro!r} is {src.quantity}, not a measured barometric_pressure")
    return out


def _formula(pt: dict, p: str, r: _Reader) -> Formula | None:
    f = r.table(pt, "formula", f"{p}.formula")
    kind = r.get(f, "kind", f"{p}.formula", str, "difference")
    if kind not in FORMULAS:
        r.problem(f"{p}.formula.kind", f"unknown formula {kind!r}", f"one of {sorted(FORMULAS)}")
        return None
    r.known(f, {"kind", "max_age", *FORMULAS[kind]}, f"{p}.formula")
    inputs = tuple(r.get(f, key, f"{p}.formula", str, "", required=True)
                   for key in FORMULAS[kind])
    max_age = r.duration(f, "max_age", f"{p}.formula", 3600.0) or 3600.0
    return Formula(kind, inputs, max_age)


def _conversion(pt: dict, p: str, r: _Reader, device: Device | None) -> Conversion:
    raw = pt.get("conversion", {"kind": "none"})
    if not isinstance(raw, dict):
        r.problem(f"{p}.conversion", "expected a table such as { kind = \"radar_level\", ... }")
        return Conversion("none")
    kind = r.get(raw, "kind", f"{p}.conversion", str, "none")
    if kind not in CONVERSIONS:
        r.problem(f"{p}.conversion.kind", f"unknown conversion {kind!r}",
                  f"one of {', '.join(CONVERSIONS)}")
        return Conversion("none")
    required, optional = CONVERSIONS[kind]
    r.known(raw, {"kind", *required, *optional}, f"{p}.conversion")
    params: dict[str, Any] = {}
    for key in (*required, *optional):
        where = f"{p}.conversion"
        needed = key in required
        if key in _CHANNEL_PARAMS:
            v = r.get(raw, key, where, str, None, required=needed)
            if v and device is not None and v not in {reg.name for reg in device.profile.registers}:
                r.problem(f"{where}.{key}",
                          f"device profile {device.profile.name!r} has no register {v!r}")
        elif key in _POINT_PARAMS:
            v = r.get(raw, key, where, str, None, required=needed)
        elif key in _DURATION_PARAMS:
            v = r.duration(raw, key, where, None, required=needed)
            if v is not None and v <= 0:
                r.problem(f"{where}.{key}", "must be greater than zero")
        else:
            v = r.get(raw, key, where, float, None, required=needed)
        if v is not None:
            params[key] = v
    quantity = pt.get("quantity")
    if kind == "vibrating_wire" and quantity == "phreatic_depth" and "mouth_elevation" not in params:
        r.problem(f"{p}.conversion.mouth_elevation",
                  "phreatic depth needs the elevation of the borehole mouth (ground surface)",
                  "phreatic_depth = mouth_elevation - piezometric head "
                  "(docs/conversions.md#vibrating-wire-piezometer)")
    if "barometer" in params and "q0" not in params:
        r.problem(f"{p}.conversion.q0", "a barometric correction needs q0, the barometric "
                  "pressure (kPa) when the gauge's zero reading f0 was taken",
                  "P = k (F - F0) + b (T - T0) + (q0 - Q) "
                  "(docs/conversions.md#vibrating-wire-piezometer)")
    if params.get("barometer_sign", 1.0) not in (1.0, -1.0):
        r.problem(f"{p}.conversion.barometer_sign", "must be 1 or -1")
    return Conversion(kind, params)


def _level_set(t: dict, path: str, r: _Reader, side: str, deadband: float | None) -> LevelSet | None:
    values = [r.get(t, lv, path, float, math.nan) for lv in LEVELS]
    if all(math.isnan(v) for v in values):
        r.problem(path, f"no {side} threshold set", "set at least one of blue, yellow, orange, red")
        return None
    set_levels = [(lv, v) for lv, v in zip(LEVELS, values, strict=True) if not math.isnan(v)]
    for (la, va), (lb, vb) in zip(set_levels, set_levels[1:], strict=False):
        bad = vb < va if side == "upper" else vb > va
        if bad:
            order = "blue <= yellow <= orange <= red" if side == "upper" else \
                "blue >= yellow >= orange >= red"
            word = "higher" if side == "upper" else "lower"
            r.problem(f"{path}.{lb}", f"{lb} = {vb:g} is out of order against {la} = {va:g} "
                      f"for direction '{side}'",
                      f"{word} values are worse here, so {order}")
    gaps = [abs(b - a) for (_, a), (_, b) in zip(set_levels, set_levels[1:], strict=False) if b != a]
    restore_doc = r.table(t, "restore", f"{path}.restore")
    r.known(restore_doc, set(LEVELS), f"{path}.restore")
    restore: list[float] = []
    for lv, v in zip(LEVELS, values, strict=True):
        given = r.get(restore_doc, lv, f"{path}.restore", float, None)
        if math.isnan(v):
            if given is not None:
                r.problem(f"{path}.restore.{lv}", f"restore level given but no {lv} threshold")
            restore.append(math.nan)
            continue
        if given is None:
            # docs/requirements.md R4: without a restore level, a deadband of a few percent applies;
            # capped by a quarter of the smallest gap between levels, so a restore never crosses a
            # lower level (2 % of an elevation such as 1256 m would be 25 m).
            band = deadband if deadband is not None else 0.02 * abs(v)
            if gaps:
                band = min(band, 0.25 * min(gaps))
            if band <= 0:
                band = 1e-9
            given = v - band if side == "upper" else v + band
        elif (side == "upper" and given >= v) or (side == "lower" and given <= v):
            r.problem(f"{path}.restore.{lv}", f"restore {given:g} must be on the safe side of the "
                      f"{lv} threshold {v:g}",
                      "below the threshold for 'upper', above it for 'lower'")
        restore.append(given)
    return LevelSet(tuple(values), tuple(restore))  # type: ignore[arg-type]


def _thresholds(t: dict, path: str, r: _Reader, direction_default: str) -> Thresholds | None:
    r.known(t, _THRESHOLD_KEYS, path)
    direction = r.get(t, "direction", path, str, direction_default)
    if direction not in ("upper", "lower", "both"):
        r.problem(f"{path}.direction", f"unknown direction {direction!r}", "upper, lower or both")
        return None
    deadband = r.get(t, "deadband", path, float, None)
    if deadband is not None and deadband < 0:
        r.problem(f"{path}.deadband", "must not be negative")
    upper = lower = None
    if direction == "both":
        for lv in LEVELS:
            if lv in t:
                r.problem(f"{path}.{lv}", "with direction 'both' the levels go in "
                          "[thresholds.upper] and [thresholds.lower]")
        upper = _level_set(r.table(t, "upper", f"{path}.upper", True), f"{path}.upper", r,
                           "upper", deadband)
        lower = _level_set(r.table(t, "lower", f"{path}.lower", True), f"{path}.lower", r,
                           "lower", deadband)
        for sub, name in ((t.get("upper", {}), "upper"), (t.get("lower", {}), "lower")):
            if isinstance(sub, dict):
                r.known(sub, {*LEVELS, "restore"}, f"{path}.{name}")
    else:
        if "upper" in t or "lower" in t:
            r.problem(path, f"sub-tables upper/lower are only for direction 'both' (this point is "
                      f"'{direction}')")
        levels = _level_set(t, path, r, direction, deadband)
        if direction == "upper":
            upper = levels
        else:
            lower = levels
    samples = r.get(t, "debounce", path, int, 3)
    clear_samples = r.get(t, "clear_samples", path, int, 3)
    if samples < 1:
        r.problem(f"{path}.debounce", "needs at least 1 sample")
    if clear_samples < 1:
        r.problem(f"{path}.clear_samples", "needs at least 1 sample")
    return Thresholds(
        direction=direction, upper=upper, lower=lower,
        raise_samples=max(1, samples), raise_hold=r.duration(t, "hold", path, 0.0) or 0.0,
        clear_samples=max(1, clear_samples),
        clear_hold=r.duration(t, "clear_hold", path, 0.0) or 0.0,
        red_immediate=r.get(t, "red_immediate", path, bool, True),
    )


def _check_periods(devices: list[Device], points: list[Point], r: _Reader, doc: dict) -> None:
    """GB 51108-2015 §4.5.4: a tailings item must be measured at least once a day."""
    tailings_devices = {p.device for p in points if p.quantity in TAILINGS_ITEMS}
    raw = _array(doc, "devices", r) if isinstance(doc.get("devices"), list) else []
    for i, d in enumerate(devices):
        if d.name in tailings_devices and d.period > TAILINGS_MAX_PERIOD:
            idx = next((j for j, x in enumerate(raw) if x.get("name") == d.name), i)
            r.problem(f"devices[{idx}].period", f"{d.period:g} s is slower than once a day for a "
                      "device that measures tailings items",
                      "GB 51108-2015 §4.5.4 asks for 1 per 10 min ... 1 per 24 h")


_MQTT_KEYS = {"host", "port", "prefix", "protocol", "client_id", "keepalive", "username",
              "password_file", "tls_ca", "tls_cert", "tls_key", "reconnect_min", "reconnect_max"}


def _mqtt(m: dict, r: _Reader, base_dir: Path, site: Site, gw: GatewayIdentity) -> MqttUplink:
    p = "uplink.mqtt"
    r.known(m, _MQTT_KEYS, p)
    protocol = str(r.get(m, "protocol", p, (str, int, float), "5"))
    if protocol not in ("5", "3.1.1"):
        r.problem(f"{p}.protocol", f"unknown MQTT protocol {protocol!r}", "\"5\" or \"3.1.1\"")
    prefix = r.get(m, "prefix", p, str, "minewatch/v1")
    if any(c in prefix for c in "#+") or prefix.endswith("/"):
        r.problem(f"{p}.prefix", f"prefix {prefix!r} may not hold wildcards or end in '/'")

    def opt_path(key: str) -> Path | None:
        v = r.get(m, key, p, str, None)
        return base_dir / v if v else None

    return MqttUplink(
        host=r.get(m, "host", p, str, "127.0.0.1"),
        port=r.get(m, "port", p, int, 1883),
        prefix=prefix,
        protocol=protocol,
        client_id=r.get(m, "client_id", p, str, f"minewatch-{site.code}-{gw.id}"),
        keepalive=r.get(m, "keepalive", p, int, 30),
        username=r.get(m, "username", p, str, None),
        password_file=opt_path("password_file"),
        tls_ca=opt_path("tls_ca"),
        tls_cert=opt_path("tls_cert"),
        tls_key=opt_path("tls_key"),
        reconnect_min=r.duration(m, "reconnect_min", p, 0.5) or 0.5,
        reconnect_max=r.duration(m, "reconnect_max", p, 30.0) or 30.0,
    )


def _positive(r, table: dict, key: str, kind: type, default):
    """A `[storage.influx]` count (int) or duration (float: seconds or "10s") above zero."""
    value = r.duration(table, key, "storage.influx", default) if kind is float \
        else r.get(table, key, "storage.influx", kind, default)
    if value is not None and value <= 0:
        r.problem(f"storage.influx.{key}", f"must be above zero, got {value}")
        return default
    return value


# -- detector parameters (issue 5) ----------------------------------------------------------
# `[points.detector.<name>]` and `[detector_defaults.<quantity>.<name>]` take the kernels' own
# parameter names (detectors/<name>.py documents them); the state layout (window bucket counts,
# history lengths) is fixed per detector and not a per-point key. Fields set elsewhere in the
# config (direction from the quantity, plausible range, the device period) are not keys here.
_FROM_ELSEWHERE = {"direction", "plausible_min", "plausible_max", "period_s"}


def detector_param_spec(detector: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Field → (kind, per-channel shape) of a detector's parameters: kind 'bool', 'int',
    'duration' (seconds or '6h'; fields ending in _s or _hold) or 'float'."""
    import importlib

    from detectors.registry import detector_class

    if detector == "threshold":
        return {}  # the point's `thresholds` table configures it
    cls = detector_class(detector)
    params_cls = getattr(importlib.import_module(cls.__module__),
                         cls.__name__.removesuffix("Detector") + "Params")
    spec = {}
    for name, arr in vars(params_cls.defaults(1)).items():
        if name in _FROM_ELSEWHERE:
            continue
        kind = ("bool" if arr.dtype == bool else "int" if arr.dtype.kind in "iu" else
                "duration" if name.endswith(("_s", "_hold")) else "float")
        spec[name] = (kind, arr.shape[1:])
    return spec


def _param_value(value: Any, kind: str, shape: tuple[int, ...], path: str, r: _Reader) -> Any:
    """One parameter, checked against its kind and shape (a level set is 4 numbers, NaN for
    an unused level); None after a problem was recorded."""
    if shape:
        if not isinstance(value, list) or len(value) != shape[0]:
            r.problem(path, f"expected a list of {shape[0]} numbers, got {value!r}",
                      "blue, yellow, orange, red; nan for an unused level")
            return None
        items = [_param_value(v, kind, (), path, r) for v in value]
        return None if any(v is None for v in items) else tuple(items)
    try:
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if kind == "int":
            if not isinstance(value, int):
                raise ValueError(f"expected an integer, got {value!r}")
            return value
        if kind == "duration":
            return parse_duration(value)
        if not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    except ValueError as exc:
        r.problem(path, str(exc))
        return None


def _detector_tables(doc: dict, path: str, r: _Reader) -> dict[str, dict[str, Any]]:
    """`{detector: {field: value}}` from a table of detector tables, each checked: the names,
    the kinds, and the detector's own validation of the resulting parameters."""
    out: dict[str, dict[str, Any]] = {}
    for detector, table in doc.items():
        p = f"{path}.{detector}"
        if detector not in LIVE_DETECTORS:
            r.problem(p, f"unknown detector {detector!r}",
                      f"one of {', '.join(sorted(LIVE_DETECTORS))}")
            continue
        if not isinstance(table, dict):
            r.problem(p, "expected a table of parameters")
            continue
        spec = detector_param_spec(detector)
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in spec:
                r.problem(f"{p}.{key}", f"{detector} has no parameter {key!r}",
                          f"its parameters: {', '.join(spec) or 'none (see thresholds)'}")
                continue
            v = _param_value(value, *spec[key], f"{p}.{key}", r)
            if v is not None:
                values[key] = v
        problem = detector_params_problem(detector, values)
        if problem:
            key = next((k for k in values if k in problem), None)
            r.problem(f"{p}.{key}" if key else p, problem)
            continue
        out[detector] = values
    return out


def detector_params_problem(detector: str, values: dict[str, Any]) -> str:
    """The detector's own validation of one channel with these values ('' when valid)."""
    import importlib

    from detectors.registry import detector_class

    cls = detector_class(detector)
    params = getattr(importlib.import_module(cls.__module__),
                     cls.__name__.removesuffix("Detector") + "Params").defaults(1)
    apply_detector_params(params, 0, values)
    try:
        params.validate()
    except ValueError as exc:
        return str(exc)
    return ""


def apply_detector_params(params: Any, channel: int, values: dict[str, Any]) -> None:
    """Write configured values into one channel of a detector's parameter arrays."""
    for key, value in values.items():
        getattr(params, key)[channel] = value


def _detector_defaults(doc: dict, r: _Reader) -> dict[str, dict[str, dict[str, Any]]]:
    """`[detector_defaults.<quantity>.<detector>]`: a site's parameters for every point of a
    quantity (a point's own `[points.detector.<name>]` keys win)."""
    top = r.table(doc, "detector_defaults", "detector_defaults")
    out = {}
    for quantity, table in top.items():
        p = f"detector_defaults.{quantity}"
        if quantity not in QUANTITIES:
            r.problem(p, f"unknown quantity {quantity!r}",
                      f"one of {', '.join(sorted(QUANTITIES))}")
            continue
        if not isinstance(table, dict):
            r.problem(p, "expected a table of detector tables")
            continue
        out[quantity] = _detector_tables(table, p, r)
    return out
