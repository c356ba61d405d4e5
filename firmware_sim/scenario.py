"""Scenarios: scripted physical signals with seeded noise, loaded from `firmware_sim/scenarios/*.toml`.

A scenario names the site config it drives and gives, per point, the true physical value over
time (keyframes, linearly interpolated) and the sensor noise. Every served or generated value is a
pure function of (seed, point, tick): the noise comes from a counter-based hash, not from a
stateful generator, so the live simulator and an offline export of the same scenario agree exactly.
"""

from __future__ import annotations

import tomllib
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = ["Signal", "Scenario", "ScenarioError", "load_scenario", "scenario_dir", "gaussian_noise"]

_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and the key."""


def scenario_dir() -> Path:
    return Path(__file__).resolve().parent / "scenarios"


def _seconds(value, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        for suffix in sorted(_UNITS, key=len, reverse=True):
            if value.endswith(suffix):
                try:
                    return float(value[: -len(suffix)]) * _UNITS[suffix]
                except ValueError:
                    break
    raise ScenarioError(f"{where}: expected a duration such as 3600, '90min', '36h', got {value!r}")


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
        return v


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario by name (a file in `firmware_sim/scenarios/`) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = scenario_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in scenario_dir().glob("*.toml")))
        raise ScenarioError(f"scenario {str(name_or_path)!r} not found (known: {known})")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
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
    signals: dict[str, Signal] = {}
    for key, spec in doc.get("signals", {}).items():
        sw = f"{path}: signals.{key}"
        pts = spec.get("keyframes")
        if not isinstance(pts, list) or not pts:
            raise ScenarioError(f"{sw}.keyframes: a list of [time, value] pairs is required")
        times = np.array([_seconds(p[0], f"{sw}.keyframes") for p in pts], dtype=np.float64)
        values = np.array([float(p[1]) for p in pts], dtype=np.float64)
        if np.any(np.diff(times) < 0):
            raise ScenarioError(f"{sw}.keyframes: times must increase")
        signals[key] = Signal(key, times, values, float(spec.get("noise", 0.0)))
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
    )
