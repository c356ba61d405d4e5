"""Typed, immutable site configuration: what `load_site` returns and every stage reads.

The shape follows docs/contracts.md#site-config (site, gateway, buses, devices, points, uplink,
storage, outbox).
Thresholds are kept in the field's terms (direction plus four colour levels and their restore
levels); the detector parameters are built from them in one place (`detectors.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.profiles import DeviceProfile

LEVELS = ("blue", "yellow", "orange", "red")
DIRECTIONS = ("upper", "lower", "both")


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    kind: str  # tailings_pond | underground_mine | open_pit | chemical_plant | metallurgy
    timezone: str


@dataclass(frozen=True)
class GatewayIdentity:
    id: str
    state_dir: Path
    listen: tuple[str, int] | None = ("127.0.0.1", 9108)  # /metrics and /status; None = off
    listen_public: bool = False  # the operator's explicit yes to a non-loopback `listen`
    status_token_file: Path | None = None  # bearer token every /status and /metrics request needs


@dataclass(frozen=True)
class Bus:
    name: str
    transport: str  # tcp | rtu | rtu_over_tcp
    host: str | None
    port: int | None
    serial_port: str | None
    baudrate: int
    parity: str
    stopbits: int
    bytesize: int
    timeout: float  # seconds, per request
    retries: int
    max_outstanding: int  # always 1: a bus is one connection, one request at a time


@dataclass(frozen=True)
class Device:
    name: str
    bus: str
    unit: int
    profile: DeviceProfile
    period: float  # seconds, normal state
    abnormal_period: float  # seconds, while a point of one of its items is at blue or above
    max_gap: int  # unused registers a merged read may bridge
    max_read: int
    timeout: float = 1.0  # seconds per request (ms resolution), default: the bus's
    retries: int = 1
    degrade_after: int = 3  # failed polls in a row before the device is skipped (0 = never)
    degrade_time: float = 600.0  # seconds a degraded device is skipped before each probe
    pause_after_connect: float = 0.0  # real seconds, for devices that need a moment
    pause_between_requests: float = 0.0
    word_order: str | None = None  # overrides the profile for every register of this device


@dataclass(frozen=True)
class LevelSet:
    """Four colour thresholds on one side (NaN where a level is not used) and restore levels."""

    thresholds: tuple[float, float, float, float]
    restore: tuple[float, float, float, float]


@dataclass(frozen=True)
class Thresholds:
    direction: str  # upper | lower | both
    upper: LevelSet | None
    lower: LevelSet | None
    raise_samples: int
    raise_hold: float
    clear_samples: int
    clear_hold: float
    red_immediate: bool
    derived: bool = False  # levels the config did not set, derived from a standard (R3)
    derived_levels: tuple[str, ...] = ()  # the ones derived beside levels the config set


@dataclass(frozen=True)
class Conversion:
    """How a register value becomes the point's engineering value (docs/conversions.md)."""

    kind: str  # none | linear | radar_level | vibrating_wire
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Formula:
    """A point computed from other points' latest good values (e.g. freeboard = beach crest
    elevation - water level); an input older than `max_age` makes the result stale."""

    kind: str  # difference
    inputs: tuple[str, ...]
    max_age: float


@dataclass(frozen=True)
class Point:
    name: str
    index: int
    quantity: str
    unit: str
    device: str
    channel: str
    conversion: Conversion
    thresholds: Thresholds | None
    detectors: tuple[str, ...]
    description: str = ""
    plausible_min: float | None = None
    plausible_max: float | None = None
    word_order: str | None = None  # overrides the device and profile for this point's register
    formula: Formula | None = None  # a derived point: no device or channel of its own
    deadband: float = 0.0  # report by exception: a change at least this large is sent at once
    max_silence: float = 3600.0  # ... and an unchanged value still every max_silence seconds
    # per detector, its parameters for this point (`[points.detector.<name>]`, over the site's
    # `[detector_defaults.<quantity>.<name>]`): ((detector, ((field, value), ...)), ...), the
    # kernels' own field names, durations in seconds, level sets as 4-tuples
    detector_params: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    # the measuring point (instrument location) this channel belongs to: the axes of one GNSS
    # station, the depths of one inclinometer; "" = the point is its own station
    station: str = ""
    # a manual reading farther than this from the automatic one (the point's unit) opens a
    # "comparison" fault: a drifting sensor (GB 39496-2020 §5.5.3); None = not compared
    manual_tolerance: float | None = None

    def params_of(self, detector: str) -> dict[str, object]:
        """This point's configured parameters of one detector (empty: the kernel's defaults)."""
        for name, pairs in self.detector_params:
            if name == detector:
                return dict(pairs)
        return {}


@dataclass(frozen=True)
class MqttUplink:
    """One northbound target, `[uplink.mqtt]` or one of several `[[uplink.mqtt]]`."""

    host: str
    port: int
    prefix: str
    protocol: str  # "5" | "3.1.1"
    client_id: str
    keepalive: int
    username: str | None
    password_file: Path | None
    tls_ca: Path | None
    tls_cert: Path | None
    tls_key: Path | None
    reconnect_min: float
    reconnect_max: float
    # end-to-end receipts: a PUBACKed event stays "sent, unconfirmed" until the platform's
    # receipt covers it, and is sent again every receipt_timeout (real seconds) until then
    receipts: bool = False
    receipt_timeout: float = 60.0
    # telemetry on the wire (gateway/encodings): compact JSON, zlib, Sparkplug B protobuf or the
    # full JSON of before; the compact ones round values to `digits` significant digits
    encoding: str = "compact"
    digits: int = 7
    # the target's name: in the outbox (its cursor), health and logs; "platform" when one
    # [uplink.mqtt] gives none
    name: str = "platform"
    # messages published and not yet PUBACKed at once: 1 is stop-and-wait; ~20 keeps a 4G
    # link's round trip busy (docs/contracts.md#topics says what stays in order)
    max_inflight: int = 20
    # encoding = "sparkplug": the Sparkplug B group_id of the edge node (default: the site code)
    sparkplug_group: str = ""
    # encoding = "sparkplug": the host_id of the Primary Host Application, whose STATE must say
    # it is online before the node is born and sends anything ("": no primary host, born at once)
    sparkplug_primary_host: str = ""


@dataclass(frozen=True)
class InfluxStorage:
    """`[storage.influx]`: where raw series go, and the local spool that holds them meanwhile."""

    url: str
    org: str
    bucket: str
    token_file: Path | None
    spool_path: Path = Path("state/influx_spool.sqlite")
    spool_max_bytes: int = 64 * 1024 * 1024
    batch_lines: int = 5000  # lines per HTTP write
    flush_interval: float = 1.0  # real seconds between writes while the database keeps up
    timeout: float = 10.0  # real seconds per HTTP write
    retry_max: float = 60.0  # longest backoff between attempts while the database is away


@dataclass(frozen=True)
class Outbox:
    path: Path
    max_bytes: int
    # a file this large is kept beside the outbox and given up when an alert finds the disk full
    reserve_bytes: int = 4 * 1024 * 1024
    # what may wait in memory while the disk refuses writes (telemetry dropped first)
    hold_max_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class History:
    """`[history]`: the local history store (the monthly report's data), on by default."""

    enabled: bool
    path: Path
    max_bytes: int  # the store's cap; by default what 13 months of the site's points need
    keep_months: int = 13  # whole months kept before the current one


@dataclass(frozen=True)
class AlertPolicy:
    """Storm control and fault reporting of the alert engine."""

    storm_raises: int = 3  # raises of one point within storm_window make it "flapping"
    storm_window: float = 3600.0
    storm_hold: float = 1800.0  # a flapping point's downgrades and clears wait this long
    fault_after: int = 3  # bad polls in a row before a fault event
    repair_warning: float = 6 * 86400.0  # GB 51108-2015 §10.0.1: repair within 7 days
    repair_limit: float = 7 * 86400.0


@dataclass(frozen=True)
class Commands:
    """`[commands]`: the platform's requests on `<prefix>/<site>/<gateway>/cmd/<name>`
    (docs/commands.md). Durations of reminders and maintenance are clock seconds; the window and
    the probation are real seconds (they guard against replays and unreachable devices)."""

    enabled: bool = False
    key_file: Path | None = None  # HMAC secret or Ed25519 public key; never logged
    window: float = 300.0  # a request's `ts` must be this close to the gateway's wall clock
    ack_reminder: float = 900.0  # first reminder of an unacknowledged orange or red alert; 0 = off
    ack_reminder_growth: float = 2.0  # each interval this many times the one before ...
    ack_reminder_max: float = 4 * 3600.0  # ... up to this
    config_probation: float = 300.0  # a pushed config must reach its devices and broker in this
    maintenance_max: float = 7 * 86400.0  # the longest maintenance window one request may set


@dataclass(frozen=True)
class SiteConfig:
    path: Path
    site: Site
    gateway: GatewayIdentity
    buses: tuple[Bus, ...]
    devices: tuple[Device, ...]
    points: tuple[Point, ...]
    mqtt: MqttUplink | None  # the first (or only) uplink target: commands come over it
    influx: InfluxStorage | None
    outbox: Outbox
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    history: History | None = None  # None only for configs built by hand (tests)
    commands: Commands = field(default_factory=Commands)
    # every uplink target in the file's order, `mqtt` first; () = just `mqtt`, if any
    uplinks: tuple[MqttUplink, ...] = ()
    # the TOML text this config was read from (its version is a digest of it)
    source: str = field(default="", repr=False, compare=False)
    encoding: str = "utf-8"  # how the file was decoded (gateway/text_files.py)

    @property
    def mqtt_targets(self) -> tuple[MqttUplink, ...]:
        """Every northbound target, the first being `mqtt`."""
        return self.uplinks or ((self.mqtt,) if self.mqtt is not None else ())

    @property
    def version(self) -> str:
        """The config's version: the first 16 hex digits of the SHA-256 of its text."""
        import hashlib

        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()[:16]

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    def bus(self, name: str) -> Bus:
        for b in self.buses:
            if b.name == name:
                return b
        raise KeyError(name)
