"""Physical models of process plants (hazardous-chemical sites, metallurgy works) for scenarios.

Each is a pure function of scenario time, solved once at load on a fixed grid like the models of
`firmware_sim.physics` (docs/chemical_metallurgy.md#simulated-physics says where each formula
comes from):

- `tank`: the level of a vertical cylindrical storage tank from its in- and outflows,
  A·dh/dt = Q_in − Q_out, held at the `overflow` height while more comes in than goes out (the
  product leaves through the vents or over the rim) and never below empty.
- `gaussian_plume`: a gas released at a steady rate, carried by a steady wind to one detector:
  the ground-level Gaussian plume C = Q / (π·u·σy·σz) · exp(−y² / 2σy²) with Briggs' open-country
  dispersion widths for the stability class, in ppm at the ambient temperature; the cloud's front
  reaches the detector x/u after the release starts and builds up over about σy/u (at least a
  minute), its tail leaves the same way x/u after the release stops.
- `cooling_outlet`: the outlet water temperature of a furnace cooling circuit following the
  circuit's flow: T_out = T_in + P / (ρ·c_p·Q) through a first-order lag (the water and the
  cooler's steel store heat), so a lost flow shows as a rising outlet temperature minutes later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from firmware_sim.model_base import Model, ModelError, cumulative, daily, grid, lag_series, number

__all__ = ["PROCESS_MODELS", "briggs_sigmas", "plume_ppm", "WATER_DENSITY", "WATER_CP"]

GAS_CONSTANT = 8.314462618  # J/(mol·K)
WATER_DENSITY = 992.2  # kg/m³, water at 40 °C (a cooling circuit's outlet)
WATER_CP = 4.179  # kJ/(kg·K), the same water

# Briggs (1973) open-country dispersion widths, x in m: (a, b) of σy = a·x·(1 + 0.0001·x)^-0.5,
# and σz as a function of x per Pasquill stability class (A very unstable ... F very stable)
_SIGMA_Y = {"A": 0.22, "B": 0.16, "C": 0.11, "D": 0.08, "E": 0.06, "F": 0.04}
_SIGMA_Z: dict[str, Callable[[float], float]] = {
    "A": lambda x: 0.20 * x,
    "B": lambda x: 0.12 * x,
    "C": lambda x: 0.08 * x / math.sqrt(1.0 + 0.0002 * x),
    "D": lambda x: 0.06 * x / math.sqrt(1.0 + 0.0015 * x),
    "E": lambda x: 0.03 * x / (1.0 + 0.0003 * x),
    "F": lambda x: 0.016 * x / (1.0 + 0.0003 * x),
}
MIN_DOWNWIND = 10.0  # m: closer to the source the point-source plume formula means nothing


def _keyframes(points: object, seconds, key: str) -> tuple[np.ndarray, np.ndarray]:
    """`[[time, m³/h], ...]` as (times s, flows): linear between keyframes, times strictly
    increasing (a pump starts and stops over a minute or so: its ramp is written out)."""
    if not isinstance(points, list) or not points or not all(
            isinstance(p, list) and len(p) == 2 for p in points):
        raise ModelError(f"{key}: a list of [time, m³/h] pairs is required")
    times = np.array([seconds(p[0], key) for p in points], dtype=np.float64)
    values = np.array([float(p[1]) for p in points], dtype=np.float64)
    if np.any(np.diff(times) <= 0) or np.any(values < 0):
        raise ModelError(f"{key}: times must increase strictly (write a pump's start as a short "
                         "ramp) and flows be >= 0")
    return times, values


def _tank(p: Mapping, duration: float, seconds, deps) -> Model:
    diameter = number(p, "diameter")
    overflow = number(p, "overflow")  # m above the bottom where the product leaves the tank
    level0 = number(p, "level0")
    if diameter <= 0:
        raise ModelError("diameter: must be > 0")
    if not 0.0 <= level0 <= overflow:
        raise ModelError("level0: must lie between 0 and the overflow height")
    area = math.pi * diameter**2 / 4.0
    in_t, in_q = _keyframes(p.get("inflow", [[0, 0.0]]), seconds, "inflow")
    out_t, out_q = _keyframes(p.get("outflow", [[0, 0.0]]), seconds, "outflow")
    nodes = grid(duration, 60.0)
    corners = np.concatenate([in_t, out_t])
    nodes = np.union1d(nodes, corners[(corners > 0) & (corners < nodes[-1])])
    net = np.diff(cumulative(nodes, in_t, in_q) - cumulative(nodes, out_t, out_q))  # m³
    level = np.empty_like(nodes)
    level[0] = h = level0
    for i, dv in enumerate(net):
        # what comes in above the overflow leaves the tank: it is not stored for later
        h = min(max(h + dv / area, 0.0), overflow)
        level[i + 1] = h
    return Model("tank", nodes, level, dict(p))


def briggs_sigmas(x: float, stability: str = "D") -> tuple[float, float]:
    """Crosswind and vertical dispersion widths (σy, σz) in m at `x` m downwind, Briggs'
    open-country formulas.

    >>> [round(s, 3) for s in briggs_sigmas(100.0, "D")]
    [7.96, 5.595]
    """
    if stability not in _SIGMA_Y:
        raise ModelError(f"stability: one of {', '.join(_SIGMA_Y)}, got {stability!r}")
    return _SIGMA_Y[stability] * x / math.sqrt(1.0 + 0.0001 * x), _SIGMA_Z[stability](x)


def plume_ppm(rate_g_s: float, wind: float, x: float, y: float, stability: str,
              molar_mass: float, ambient_c: float = 20.0, pressure_kpa: float = 101.325) -> float:
    """Steady ground-level concentration (ppm by volume) of a ground-level release of
    `rate_g_s` g/s at `x` m downwind and `y` m crosswind, the ground reflecting the plume.

    >>> round(plume_ppm(1.0, 2.0, 40.0, 0.0, "D", 17.031), 1)   # ammonia, 1 g/s, 40 m
    30.2
    """
    sy, sz = briggs_sigmas(x, stability)
    mg_m3 = 1000.0 * rate_g_s / (math.pi * wind * sy * sz) * math.exp(-y * y / (2 * sy * sy))
    litres_per_mol = GAS_CONSTANT * (273.15 + ambient_c) / pressure_kpa
    return mg_m3 * litres_per_mol / molar_mass


def _ramp(t: np.ndarray, start: float, width: float) -> np.ndarray:
    return np.clip((t - start) / width, 0.0, 1.0)


def _gaussian_plume(p: Mapping, duration: float, seconds, deps) -> Model:
    rate = number(p, "rate")  # g/s
    wind = number(p, "wind_speed")  # m/s
    x = number(p, "downwind")
    y = number(p, "crosswind", 0.0)
    start = seconds(p["start"], "start")
    end = seconds(p["end"], "end")
    if end <= start:
        raise ModelError("end: must be after start")
    if wind <= 0 or rate < 0:
        raise ModelError("wind_speed: must be > 0 (and rate >= 0)")
    if 0 < x < MIN_DOWNWIND:
        raise ModelError(f"downwind: closer than {MIN_DOWNWIND:g} m the plume formula does not "
                         "hold")
    background = {"mean": 0.0, **{k: v for k, v in p.items() if k in (
        "mean", "trend_per_day", "daily_amplitude", "daily_peak_hour")}}
    nodes = grid(duration, 60.0)
    params = dict(p)
    if x <= 0:  # upwind of the source: the plume never comes here
        values = np.maximum(daily(nodes, background), 0.0)
        return Model("gaussian_plume", nodes, values, {**params, "peak_ppm": 0.0})
    peak = plume_ppm(rate, wind, x, y, str(p.get("stability", "D")), number(p, "molar_mass"),
                     number(p, "ambient", 20.0), number(p, "pressure", 101.325))
    # the front reaches the detector x/u after the release starts and builds up over the time
    # the cloud's along-wind width (about σy) takes to pass, at least a minute; the tail the same
    # after the release stops
    spread = max(briggs_sigmas(x, str(p.get("stability", "D")))[0] / wind, 60.0)
    arrive, leave = start + x / wind, end + x / wind
    corners = np.array([arrive, arrive + spread, leave, leave + spread])
    nodes = np.union1d(nodes, corners[(corners > 0) & (corners < nodes[-1])])
    envelope = _ramp(nodes, arrive, spread) - _ramp(nodes, leave, spread)
    values = np.maximum(daily(nodes, background) + peak * envelope, 0.0)
    return Model("gaussian_plume", nodes, values,
                 {**params, "peak_ppm": peak, "arrival_s": start + x / wind})


def _cooling_outlet(p: Mapping, duration: float, seconds, deps) -> Model:
    flow = deps[str(p["follows"])]  # m³/h
    heat = number(p, "heat_load_kw")
    lag = seconds(p.get("lag", "10min"), "lag")
    min_flow = number(p, "min_flow", 1.0)
    if heat < 0 or min_flow <= 0:
        raise ModelError("heat_load_kw: must be >= 0 (and min_flow > 0)")
    nodes = grid(duration, 60.0)
    q = np.maximum(flow.truth(nodes), min_flow)
    rise = heat / (WATER_DENSITY * q / 3600.0 * WATER_CP)  # K: P = ρ·Q·c_p·ΔT
    inlet = daily(nodes, p)  # the inlet (supply) water temperature and its daily rhythm
    return Model("cooling_outlet", nodes, lag_series(nodes, inlet + rise, lag), dict(p))


PROCESS_MODELS: dict[str, Callable] = {
    "tank": _tank, "gaussian_plume": _gaussian_plume, "cooling_outlet": _cooling_outlet,
}
