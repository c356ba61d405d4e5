"""Simulated field devices: the sensors of a site config, answering reads with a scenario's physics.

The simulator reads the same site config file the gateway reads (plain TOML, not through the
gateway's loader: it may import only the profile loader), finds each device's profile, and turns
the scenario's true values into what the sensor firmware would hold in its registers: the inverse
of the gateway's conversions (a water-level elevation becomes the radar's empty height in mm, a
phreatic depth becomes a vibrating-wire frequency in 0.1 Hz). A map error in a profile therefore
shows up as a wrong value in tests, not on site.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim.encode import encode_value
from firmware_sim.faults import DEVICE_FAULTS, FLAG_FAULTS, Fault, active_faults
from firmware_sim.scenario import Scenario
from firmware_sim.slave import Reply
from gateway.profiles import DeviceProfile, Register, find_profile, load_profile
from gateway.toml_text import read_toml

__all__ = ["SimDevice", "SiteSource", "load_site_devices", "register_value"]

_TO_METRE = {"mm": 0.001, "cm": 0.01, "m": 1.0}
GRAVITY_KPA_PER_M = 9.81
DEFAULT_TEMPERATURE = 12.0  # degC in a borehole when the scenario gives none
RADAR_INSTALLATION_HEIGHT_MM = 20000


@dataclass
class SimDevice:
    name: str
    bus: str
    unit: int
    profile: DeviceProfile
    # register name -> (signal key, inverse conversion) for registers that carry a point
    channels: dict[str, tuple[str, dict, str]] = field(default_factory=dict)
    temperatures: dict[str, str] = field(default_factory=dict)  # register -> signal key


def load_site_devices(site_config: Path) -> tuple[dict, list[SimDevice]]:
    """The buses (raw tables) and devices of a site config, with the points mapped onto registers."""
    doc, _ = read_toml(site_config)
    base = Path(site_config).resolve().parent
    dirs = [base / "profiles", base.parent / "profiles"]
    if "profiles_dir" in doc:
        dirs.insert(0, base / doc["profiles_dir"])
    devices: dict[str, SimDevice] = {}
    for d in doc.get("devices", []):
        profile = load_profile(find_profile(d["profile"], dirs))
        devices[d["name"]] = SimDevice(d["name"], d["bus"], int(d["unit"]), profile)
    for p in doc.get("points", []):
        dev = devices.get(p.get("device", ""))
        if dev is None:
            continue
        conv = dict(p.get("conversion", {"kind": "none"}))
        dev.channels[p["channel"]] = (p["name"], conv, p.get("quantity", "generic"))
        if conv.get("temperature_channel"):
            dev.temperatures[conv["temperature_channel"]] = f"{p['name']}:temperature"
    buses = {b["name"]: b for b in doc.get("buses", [])}
    return buses, list(devices.values())


def register_value(dev: SimDevice, reg: Register, scenario: Scenario, t: float) -> float:
    """The engineering value the firmware holds in `reg` at epoch time `t`."""
    if reg.name in dev.channels:
        key, conv, quantity = dev.channels[reg.name]
        if key not in scenario.signals:
            return 0.0
        value = float(scenario.value(key, t))
        return _to_register(value, conv, quantity, reg, dev, scenario, t)
    if reg.name in dev.temperatures:
        key = dev.temperatures[reg.name]
        return float(scenario.value(key, t)) if key in scenario.signals else DEFAULT_TEMPERATURE
    if reg.name == "installation_height":
        return float(RADAR_INSTALLATION_HEIGHT_MM)
    if reg.name == "level" and "empty_height" in dev.channels:
        empty = register_value(dev, dev.profile.register("empty_height"), scenario, t)
        return max(0.0, RADAR_INSTALLATION_HEIGHT_MM - empty)
    return 0.0  # an unused channel (a VW logger reads 0 on an unconnected channel)


def _to_register(value: float, conv: dict, quantity: str, reg: Register, dev: SimDevice,
                 scenario: Scenario, t: float) -> float:
    kind = conv.get("kind", "none")
    if kind == "radar_level":
        return (conv["mount_elevation"] - value) / _TO_METRE.get(reg.unit, 0.001)
    if kind == "linear":
        return (value - conv.get("offset", 0.0)) / conv.get("scale", 1.0)
    if kind == "rain_counter":
        # the scenario gives the gauge's running total (mm); the counter register wraps at its top
        wrap = conv.get("wrap")
        return value % wrap if wrap else value
    if kind == "vibrating_wire":
        if quantity == "pore_pressure":
            pressure = value
        else:
            head = value if quantity == "piezometric_head" else conv["mouth_elevation"] - value
            pressure = (head - conv["install_elevation"]) * GRAVITY_KPA_PER_M
        temp_reg = conv.get("temperature_channel")
        temp = conv.get("t0", 0.0)
        if temp_reg:
            temp = register_value(dev, dev.profile.register(temp_reg), scenario, t)
        modulus = conv["f0"] + (pressure - conv.get("b", 0.0) * (temp - conv.get("t0", 0.0))) / conv["k"]
        return math.sqrt(max(modulus, 0.0) * 1000.0)
    return value


# what a "decimal places" register (QDY30A class) is set to: one decimal, e.g. 0x05A1 -> 144.1
DECIMAL_PLACES = 1


class SiteSource:
    """A `RegisterSource` for one listener: the devices of some buses of a site, on one clock."""

    def __init__(self, devices: list[SimDevice], scenario: Scenario, now: Callable[[], float],
                 time_scale: float = 1.0, faults: list[Fault] | None = None):
        self.devices = {d.unit: d for d in devices}
        # the scenario's communication faults plus any switched on for this run (`--fault`)
        self.faults = [f for f in [*getattr(scenario, "faults", []), *(faults or [])]
                       if f.kind in DEVICE_FAULTS]
        self.time_scale = time_scale
        self._units = frozenset(self.devices)
        # a measurement that takes 2 s in the simulated world takes 2 s of *simulated* time
        self._delay = {d.unit: d.profile.measure_delay / time_scale for d in devices}
        if len(self.devices) != len(devices):
            raise ValueError("two simulated devices share a unit id on one listener")
        self.scenario = scenario
        self.now = now
        self.requests = 0
        self.faults_acted = 0
        # (unit, table) -> (lowest, highest) wire address: reads inside the span of a table
        # return 0 for unmapped words (as these firmwares do), reads outside it are exception 2
        self._span: dict[tuple[int, str], tuple[int, int]] = {}
        for d in devices:
            for r in d.profile.registers:
                k = (d.unit, r.table)
                lo, hi = self._span.get(k, (r.wire_address, r.wire_address + r.count - 1))
                self._span[k] = (min(lo, r.wire_address), max(hi, r.wire_address + r.count - 1))
        self._cache: dict[tuple[int, str, int], dict[int, int]] = {}

    def units(self) -> frozenset[int]:
        return self._units

    def _flagged(self, dev: SimDevice, t: float) -> bool:
        """Whether the device's firmware flags its reading invalid (a `sensor_fault` window)."""
        return any(f.kind in FLAG_FAULTS for f in active_faults(
            self.faults, t - self.scenario.epoch, device=dev.name))

    def _image(self, dev: SimDevice, table: str) -> dict[int, int]:
        t = self.now()
        tick = int(self.scenario.ticks(t))
        flagged = self._flagged(dev, t) if self.faults else False
        key = (dev.unit, table, tick, flagged)
        image = self._cache.get(key)
        if image is None:
            if len(self._cache) > 4 * len(self.devices) * 4:
                self._cache.clear()
            image = {}
            scaled = {r.decimals_register for r in dev.profile.registers if r.decimals_register}
            # words first, then bit fields OR-ed into them: a status word and its flags share
            # one register, and each flag must not wipe out the others
            ordered = sorted(dev.profile.registers, key=lambda r: r.type == "bit")
            for reg in ordered:
                if reg.table != table:
                    continue
                if reg.name in scaled:
                    value = float(DECIMAL_PLACES)
                elif reg.role == "fault":
                    value = 1.0 if flagged else 0.0
                else:
                    value = register_value(dev, reg, self.scenario, t)
                decimals = DECIMAL_PLACES if reg.decimals_register else 0
                if not math.isfinite(value) and not reg.type.startswith("float"):
                    words = [0] * reg.count  # a disconnected channel reads 0
                else:
                    words = encode_value(value, reg, decimals)
                if reg.type == "bit" and table in ("holding", "input"):
                    image[reg.wire_address] = image.get(reg.wire_address, 0) | int(words[0])
                    continue
                for i, word in enumerate(words):
                    image[reg.wire_address + i] = int(word)
            self._cache[key] = image
        return image

    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        self.requests += 1
        dev = self.devices.get(unit)
        if dev is None:
            return Reply(silent=True)
        span = self._span.get((unit, table))
        if span is None or address < span[0] or address + count - 1 > span[1]:
            return Reply(exception=2)
        image = self._image(dev, table)
        words = [image.get(a, 0) for a in range(address, address + count)]
        if table in ("coil", "discrete"):
            reply = Reply(registers=[bool(w) for w in words], delay=self._delay[unit])
        else:
            reply = Reply(registers=words, delay=self._delay[unit])
        if self.faults:
            reply = self._act_out(dev, reply)
        return reply

    def _act_out(self, dev: SimDevice, reply: Reply) -> Reply:
        """The reply as a faulty device or line would give it (the first active fault wins)."""
        tau = self.now() - self.scenario.epoch
        for fault in active_faults(self.faults, tau, device=dev.name):
            self.faults_acted += 1
            if fault.kind == "timeout":
                return Reply(silent=True)
            if fault.kind == "exception":
                return Reply(exception=int(fault.params.get("code", 4)))
            if fault.kind in ("crc", "garbled"):
                return reply._replace(corrupt=True)
            if fault.kind == "slow":
                # a delay in the simulated world; the responder waits in real time
                return reply._replace(delay=reply.delay + float(fault.params.get("delay", 5.0))
                                      / self.time_scale)
            if fault.kind == "drop_connection":
                return Reply(drop_connection=True)
        return reply

    def write(self, unit: int, table: str, address: int, values: list) -> Reply:
        # the simulated firmware keeps its configuration registers read-only for now
        return Reply(exception=1 if unit in self.devices else 0, silent=unit not in self.devices)
