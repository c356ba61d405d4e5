"""Scenarios: scripted physical signals with seeded noise, loaded from `firmware_sim/scenarios/*.toml`.

A scenario names the site config it drives and gives, per point, the true physical value over
time (keyframes, linearly interpolated, or a physical model of `firmware_sim.physics`), the
sensor noise and a schedule of faults (`[[faults]]`, see `firmware_sim.faults`). Every served or
generated value is a pure function of (seed, point, tick): the noise comes from a counter-based
hash, not from a stateful generator, and value faults are functions of the tick too, so the live
simulator and an offline export of the same scenario agree exactly.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from firmware_sim.faults import FAULT_KINDS, VALUE_FAULTS, Fault
from firmware_sim.physics import ModelError, build_model, model_dependencies
from gateway.text_files import TextFileError
from gateway.toml_text import read_toml

__all__ = ["Signal", "Scenario", "ScenarioError", "load_scenario", "scenario_dir", "gaussian_noise"]

_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and the key."""


def scenario_dir() -> Path:
    return Path(__file__).resolve().parent / "scenarios"


_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|min|s|h|d)")


def _seconds(value, where: str) -> float:
    """A duration: seconds as a number, or text such as '90min', '36h', '4d3h30min'."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value and _PART.sub("", value) == "":
        return sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    raise ScenarioError(f"{where}: expected a duration such as 3600, '90min', '36h', '4d3h', "
                        f"got {value!r}")


_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return z ^ (z >> np.uint64(31))


def gaussian_noise(seed: int, key: str, ticks: np.ndarray) -> np.ndarray:
    """Standard normal samples that depend only on (seed, key, tick): Box-Muller on a hash."""
    ticks = np.asarray(ticks, dtype=np.int64).astype(np.uint64)
    base = np.uint64((int(seed) * 0x100000001B3 ^ zlib.crc32(key.encode())) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        h1 = _splitmix64(ticks * np.uint64(2) + base)
        h2 = _splitmix64(ticks * np.uint64(2) + np.uint64(1) + base)
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    u2 = (h2 >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass(frozen=True)
class Signal:
    """The true value of one point (or a point's auxiliary channel) and its measurement noise."""

    key: str
    times: np.ndarray  # seconds from the scenario start, increasing
    values: np.ndarray
    noise: float
    model: str = "keyframes"
    params: dict = field(default_factory=dict)

    def truth(self, tau: np.ndarray | float) -> np.ndarray:
        return np.interp(tau, self.times, self.values)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: Path
    site_config: Path
    epoch: float
    duration: float
    tick: float
    seed: int
    signals: dict[str, Signal]
    faults: list[Fault] = field(default_factory=list)

    def ticks(self, t: np.ndarray | float) -> np.ndarray:
        """Tick index of absolute epoch time(s) `t`. Before the start ticks run negative (the
        truth holds its first value, the noise goes on, as a real sensor's would), after the end
        they stop (the scenario is over)."""
        tau = np.minimum(np.asarray(t, dtype=np.float64) - self.epoch, self.duration)
        return np.floor(tau / self.tick + 1e-9).astype(np.int64)

    def value(self, key: str, t: np.ndarray | float) -> np.ndarray:
        """Measured value (truth at the tick plus noise) of signal `key` at epoch time(s) `t`."""
        sig = self.signals[key]
        ticks = self.ticks(t)
        v = sig.truth(ticks * self.tick)
        if sig.noise:
            v = v + sig.noise * gaussian_noise(self.seed, key, ticks)
        for fault in self.faults:
            if fault.point == key and fault.kind in VALUE_FAULTS:
                v = self._apply(fault, key, ticks, v)
        return v

    def _apply(self, fault: Fault, key: str, ticks: np.ndarray, v: np.ndarray) -> np.ndarray:
        """One value fault on measured values `v` at `ticks`; a pure function of the tick too."""
        tau = ticks * self.tick
        inside = (tau >= fault.start) & (tau < fault.end)
        if not np.any(inside):
            return v
        first = np.int64(np.ceil(fault.start / self.tick - 1e-9))  # first tick in the window
        sig = self.signals[key]
        if fault.kind == "stuck":
            held = sig.truth(first * self.tick)
            if sig.noise:
                held = held + sig.noise * gaussian_noise(self.seed, key, np.array([first]))[0]
            return np.where(inside, held, v)
        if fault.kind == "drift":
            rate = float(fault.params.get("rate", 0.0))  # units per hour
            return np.where(inside, v + rate * (tau - fault.start) / 3600.0, v)
        if fault.kind == "spike":
            return np.where(ticks == first, v + float(fault.params.get("size", 0.0)), v)
        if fault.kind == "dropout":
            # no reading at all: the device's register holds what a disconnected channel reads
            # (0 for an integer register, NaN for a float: see firmware_sim.devices)
            return np.where(inside, np.nan, v)
        # counter_reset: the counter restarts from 0 at the window's start, so it reads the
        # rain since then (its truth less the truth at the start) until the window ends
        return np.where(inside, v - sig.truth(first * self.tick), v)

    def truth(self, key: str, t: np.ndarray | float) -> np.ndarray:
        """Noise-free, fault-free value of signal `key` at epoch time(s) `t` (no tick snapping)."""
        return self.signals[key].truth(np.asarray(t, dtype=np.float64) - self.epoch)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario by name (a file in `firmware_sim/scenarios/`) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = scenario_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in scenario_dir().glob("*.toml")))
        raise ScenarioError(f"scenario {str(name_or_path)!r} not found (known: {known})")
    try:
        doc, _ = read_toml(path)  # UTF-8 or GB18030, like every file the gateway reads
    except TextFileError as exc:
        raise ScenarioError(str(exc)) from None
    head = doc.get("scenario", {})
    where = f"{path}: scenario"
    for key in ("name", "site_config", "duration"):
        if key not in head:
            raise ScenarioError(f"{where}.{key}: missing")
    epoch_text = head.get("epoch", "2026-07-20T00:00:00+08:00")
    try:
        epoch = datetime.fromisoformat(str(epoch_text)).astimezone(UTC).timestamp()
    except ValueError:
        raise ScenarioError(f"{where}.epoch: not an ISO 8601 time: {epoch_text!r}") from None
    duration = _seconds(head["duration"], f"{where}.duration")
    signals = _load_signals(doc.get("signals", {}), path, duration)
    faults = _load_faults(doc.get("faults", []), path, duration)
    for i, fault in enumerate(faults):
        if fault.point is not None and fault.point not in signals:
            raise ScenarioError(f"{path}: faults[{i}].point: {fault.point!r} has no signal")
    return Scenario(
        name=str(head["name"]),
        description=str(head.get("description", "")),
        path=path,
        site_config=(path.parent / head["site_config"]).resolve(),
        epoch=epoch,
        duration=duration,
        tick=_seconds(head.get("tick", 60), f"{where}.tick"),
        seed=int(head.get("seed", 1)),
        signals=signals,
        faults=faults,
    )


def _load_signals(table: dict, path: Path, duration: float) -> dict[str, Signal]:
    """Keyframe signals first, then models in dependency order (a phreatic line follows a level)."""
    signals: dict[str, Signal] = {}
    pending = dict(table)
    while pending:
        progressed = False
        for key, spec in list(pending.items()):
            sw = f"{path}: signals.{key}"
            if not isinstance(spec, dict):
                raise ScenarioError(f"{sw}: a table is required")
            noise = float(spec.get("noise", 0.0))
            if "model" not in spec:
                signals[key] = _keyframes(key, spec, sw, noise)
            else:
                deps = model_dependencies(spec)
                missing = [d for d in deps if d not in table]
                if missing:
                    raise ScenarioError(f"{sw}: follows unknown signal(s) {', '.join(missing)}")
                if any(d not in signals for d in deps):
                    continue
                params = {k: v for k, v in spec.items() if k not in ("model", "noise")}
                try:
                    built = build_model(str(spec["model"]), params, duration,
                                        lambda v, w, sw=sw: _seconds(v, f"{sw}.{w}"),
                                        {d: signals[d] for d in deps})
                except ModelError as exc:
                    raise ScenarioError(f"{sw}.{exc}") from None
                signals[key] = Signal(key, built.times, built.values, noise, built.name,
                                      built.params)
            del pending[key]
            progressed = True
        if not progressed:
            raise ScenarioError(f"{path}: signals {', '.join(pending)} follow each other in a "
                                "circle")
    return {key: signals[key] for key in table}


def _keyframes(key: str, spec: dict, sw: str, noise: float) -> Signal:
    pts = spec.get("keyframes")
    if not isinstance(pts, list) or not pts:
        raise ScenarioError(f"{sw}.keyframes: a list of [time, value] pairs (or a model) is "
                            "required")
    times = np.array([_seconds(p[0], f"{sw}.keyframes") for p in pts], dtype=np.float64)
    values = np.array([float(p[1]) for p in pts], dtype=np.float64)
    if np.any(np.diff(times) < 0):
        raise ScenarioError(f"{sw}.keyframes: times must increase")
    return Signal(key, times, values, noise)


def _load_faults(items: list, path: Path, duration: float) -> list[Fault]:
    faults = []
    for i, item in enumerate(items):
        fw = f"{path}: faults[{i}]"
        kind = item.get("kind")
        if kind not in FAULT_KINDS:
            raise ScenarioError(f"{fw}.kind: unknown fault kind {kind!r} "
                                f"(known: {', '.join(FAULT_KINDS)})")
        target = "point" if kind in VALUE_FAULTS else "device"
        if not isinstance(item.get(target), str):
            raise ScenarioError(f"{fw}.{target}: a {kind} fault needs the {target} it hits")
        start = _seconds(item.get("start", 0), f"{fw}.start")
        end = _seconds(item.get("end", duration), f"{fw}.end")
        if end <= start:
            raise ScenarioError(f"{fw}.end: must be after start")
        params = item.get("params", {})
        if not isinstance(params, dict):
            raise ScenarioError(f"{fw}.params: a table is required")
        faults.append(Fault(kind, start, end, device=item.get("device"), point=item.get("point"),
                            params=dict(params)))
    return faults
