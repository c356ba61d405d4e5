"""Physical signal models: the true value of a sensed quantity as a pure function of scenario time.

Each model is built once from its scenario parameters and answers `truth(tau)` for scalar or array
`tau` (seconds from the scenario's epoch). Models that integrate (the reservoir's water balance,
the phreatic line's lag) are solved once at load on a fixed grid and then interpolated, so the
answer never depends on the order or number of calls: served and generated values agree.

Models (the `model = "..."` of a `[signals.KEY]` table):
- `reservoir`: water level elevation (m) from a water balance: slurry water and rain on the
  catchment in, the decant tower (a weir, Q = c·(h − crest)^1.5) and a return-water pump out.
- `phreatic`: phreatic-line burial depth (m) following another signal's level with a
  first-order lag: depth = depth0 − gain·(level_lagged − level_ref).
- `beach`: dry beach length (m) = (beach crest elevation − water level) / beach slope.
- `rainfall`: cumulative rainfall (mm) of the declared hyetograph (intensity keyframes, mm/h).
- `creep`: dam displacement (mm) in three stages: decaying primary creep, steady secondary creep,
  tertiary creep with velocity ∝ 1/(t_f − t) so that 1/v falls linearly to zero at t_f.
- `gas`: a gas concentration (%vol or ppm) with a daily rhythm and leak events (step, ramp,
  plume = linear rise then exponential decay).
- `oxygen`: O2 (%vol) = 20.9 × (1 − sum of the displacing gases' volume fractions).
- `baseline`: any quantity with a mean, a linear trend and a daily rhythm (quiet weather), and
  the events of `gas` (a pump trip is a ramp of negative size).
- the process-plant models of `firmware_sim.process_physics`: `tank` (a storage tank's level
  from its in- and outflows, capped at the overflow), `gaussian_plume` (a gas release carried
  by the wind to one detector), `cooling_outlet` (a furnace cooling circuit's outlet water
  temperature following its flow).

The primitives they share (the model type, grids, lags, daily rhythms) are
`firmware_sim.model_base`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from firmware_sim.model_base import DAY, Model, ModelError, lagged
from firmware_sim.model_base import cumulative as _cumulative_rain
from firmware_sim.model_base import daily as _daily
from firmware_sim.model_base import grid as _grid
from firmware_sim.model_base import number as _num
from firmware_sim.process_physics import PROCESS_MODELS

__all__ = ["MODELS", "ModelError", "Model", "build_model", "model_dependencies", "hyetograph"]

O2_FRESH_AIR = 20.9  # %vol of oxygen in fresh air
_FRACTION = {"%": 0.01, "%vol": 0.01, "ppm": 1e-6}  # volume fraction per unit of concentration


def hyetograph(points: list, seconds: Callable[[object, str], float]) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Rain intensity keyframes `[[time, mm/h], ...]` as (times s, intensity mm/h)."""
    if not isinstance(points, list) or not points:
        raise ModelError("rain: a list of [time, mm/h] pairs is required")
    times = np.array([seconds(p[0], "rain") for p in points], dtype=np.float64)
    rate = np.array([float(p[1]) for p in points], dtype=np.float64)
    if np.any(np.diff(times) < 0) or np.any(rate < 0):
        raise ModelError("rain: times must increase and intensities be >= 0")
    return times, rate


def _reservoir(p: Mapping, duration: float, seconds, deps) -> Model:
    """Water balance A·dh/dt = runoff·catchment·rain − decant − pump on a 60 s grid (explicit
    Euler is stable here: the decant time constant is hours)."""
    level0 = _num(p, "level0")
    pond_area = _num(p, "pond_area")              # m², water surface (taken as constant)
    catchment = _num(p, "catchment_area")         # m², everything that drains to the pond
    runoff = _num(p, "runoff_coefficient", 0.6)
    crest = _num(p, "decant_crest")               # m, elevation of the decant tower's open window
    coeff = _num(p, "decant_coefficient")         # m^1.5/s: Q = c·(h − crest)^1.5
    base_inflow = _num(p, "base_inflow", 0.0)     # m³/s, slurry water from the mill
    pump = _num(p, "pump_outflow", 0.0)           # m³/s, return water, stops below pump_min
    pump_min = float(p.get("pump_min_level", -np.inf))
    rain_t, rain_i = hyetograph(p.get("rain", [[0, 0.0]]), seconds)
    step = 60.0
    grid = _grid(duration, step)
    depth = _cumulative_rain(grid, rain_t, rain_i) / 1000.0  # m of rain per grid node
    inflow = base_inflow + runoff * catchment * np.diff(depth) / step  # m³/s, per interval
    level = np.empty_like(grid)
    level[0] = h = level0
    for i, q_in in enumerate(inflow):
        q_out = coeff * max(h - crest, 0.0) ** 1.5 + (pump if h > pump_min else 0.0)
        h += (q_in - q_out) * step / pond_area
        level[i + 1] = h
    return Model("reservoir", grid, level, dict(p))


def _phreatic(p: Mapping, duration: float, seconds, deps) -> Model:
    source = deps[str(p["follows"])]
    lag = seconds(p.get("lag", "12h"), "lag")
    depth0 = _num(p, "depth0")
    gain = _num(p, "gain", 0.5)                   # m of depth lost per m of level rise
    level_ref = _num(p, "level_ref", float(source.truth(0.0)))
    nodes, level = lagged(source, lag, duration)
    return Model("phreatic", nodes, depth0 - gain * (level - level_ref), dict(p))


def _beach(p: Mapping, duration: float, seconds, deps) -> Model:
    source = deps[str(p["follows"])]
    crest = _num(p, "beach_crest")                # m, elevation of the beach crest
    slope = _num(p, "beach_slope")                # vertical / horizontal, e.g. 0.01 = 1 %
    if slope <= 0:
        raise ModelError("beach_slope: must be > 0")
    grid = _grid(duration, 60.0)
    return Model("beach", grid, (crest - source.truth(grid)) / slope, dict(p))


def _rainfall(p: Mapping, duration: float, seconds, deps) -> Model:
    rain_t, rain_i = hyetograph(p.get("rain", [[0, 0.0]]), seconds)
    grid = np.union1d(_grid(duration, 60.0), rain_t[(rain_t >= 0) & (rain_t <= duration)])
    total0 = _num(p, "total0", 0.0)
    return Model("rainfall", grid, total0 + _cumulative_rain(grid, rain_t, rain_i), dict(p))


def creep_displacement(tau: np.ndarray, *, primary: float, primary_time: float, velocity: float,
                       t_acc: float, t_f: float) -> np.ndarray:
    """Displacement (mm) of three-stage creep.

    Primary: primary·(1 − exp(−tau/primary_time)), a decelerating start. Secondary: `velocity`
    mm/s. Tertiary from t_acc: velocity·(t_f − t_acc)/(t_f − tau), continuous with the secondary
    velocity at t_acc, so 1/v is linear and reaches zero at t_f. After t_f − 60 s the value holds
    (the slope has failed; the sensor is gone)."""
    tau = np.minimum(np.asarray(tau, dtype=np.float64), t_f - 60.0)
    d = primary * (1.0 - np.exp(-np.maximum(tau, 0.0) / primary_time))
    steady = velocity * np.minimum(np.maximum(tau, 0.0), t_acc)
    late = np.maximum(tau, t_acc)
    tertiary = velocity * (t_f - t_acc) * np.log((t_f - t_acc) / (t_f - late))
    return d + steady + tertiary


def _creep(p: Mapping, duration: float, seconds, deps) -> Model:
    t_f = seconds(p["t_f"], "t_f")
    t_acc = seconds(p["t_acc"], "t_acc")
    if not 0 < t_acc < t_f:
        raise ModelError("t_acc: must lie between 0 and t_f")
    params = dict(primary=_num(p, "primary", 0.0),
                  primary_time=seconds(p.get("primary_time", "2d"), "primary_time"),
                  velocity=_num(p, "velocity_mm_per_day") / DAY, t_acc=t_acc, t_f=t_f)
    scale = _num(p, "share", 1.0)   # this component's share of the slip (direction cosine)
    offset = _num(p, "offset", 0.0)
    grid = _grid(min(duration, t_f - 60.0), 60.0)
    # a fine grid near t_f, where the curve bends hardest (velocity grows without bound)
    tail = t_f - np.geomspace(min(t_f - t_acc, t_f), 60.0, 400)
    grid = np.union1d(grid, tail[(tail >= 0) & (tail <= duration)])
    if duration > grid[-1]:
        grid = np.append(grid, duration)
    values = offset + scale * creep_displacement(grid, **params)
    return Model("creep", grid, values, {**dict(p), "t_f_s": t_f, "t_acc_s": t_acc})


def _events(grid: np.ndarray, events: list, seconds) -> np.ndarray:
    out = np.zeros_like(grid)
    for i, ev in enumerate(events):
        where = f"events[{i}]"
        shape = ev.get("shape")
        start = seconds(ev["start"], f"{where}.start")
        size = _num(ev, "size")
        rise = seconds(ev.get("rise", 0), f"{where}.rise")
        end = seconds(ev["end"], f"{where}.end") if "end" in ev else np.inf
        up = np.clip((grid - start) / rise, 0.0, 1.0) if rise > 0 else (grid >= start) * 1.0
        if shape == "step":
            shape_v = (grid >= start) * 1.0
        elif shape == "ramp":
            shape_v = up
        elif shape == "plume":
            decay = seconds(ev.get("decay", "1h"), f"{where}.decay")
            after = np.maximum(grid - start - rise, 0.0)
            shape_v = up * np.exp(-after / decay)
        else:
            raise ModelError(f"{where}.shape: expected step, ramp or plume, got {shape!r}")
        # the leak is stopped at `end`: the excess then ventilates away over `clear` seconds
        clear = seconds(ev.get("clear", "30min"), f"{where}.clear")
        fade = np.where(grid < end, 1.0, np.exp(-(grid - end) / clear) if np.isfinite(end)
                        else 1.0)
        held = np.interp(end, grid, shape_v) if np.isfinite(end) else 0.0
        out += size * np.where(grid < end, shape_v, held * fade)
    return out


def _gas(p: Mapping, duration: float, seconds, deps) -> Model:
    grid = _grid(duration, 60.0)
    events = p.get("events", [])
    for ev in events:  # put grid nodes on the events' corners so ramps are exact
        for k in ("start", "end"):
            if k in ev:
                grid = np.union1d(grid, [seconds(ev[k], k)])
        if "rise" in ev:
            grid = np.union1d(grid, [seconds(ev["start"], "start") + seconds(ev["rise"], "rise")])
    grid = grid[(grid >= 0) & (grid <= _grid(duration, 60.0)[-1])]
    values = np.maximum(_daily(grid, p) + _events(grid, events, seconds), 0.0)
    return Model("gas", grid, values, dict(p))


def _oxygen(p: Mapping, duration: float, seconds, deps) -> Model:
    displacing = p.get("displaced_by", {})
    if not isinstance(displacing, Mapping):
        raise ModelError("displaced_by: a table of point = unit ('%vol' or 'ppm') is required")
    grid = _grid(duration, 60.0)
    for key in displacing:
        grid = np.union1d(grid, deps[key].times[deps[key].times <= grid[-1]])
    fraction = np.zeros_like(grid)
    for key, unit in displacing.items():
        if unit not in _FRACTION:
            raise ModelError(f"displaced_by.{key}: unit must be one of {sorted(_FRACTION)}")
        fraction += deps[key].truth(grid) * _FRACTION[unit]
    base = _num(p, "fresh_air", O2_FRESH_AIR)
    return Model("oxygen", grid, base * (1.0 - fraction), dict(p))


def _baseline(p: Mapping, duration: float, seconds, deps) -> Model:
    return _gas(p, duration, seconds, deps)


MODELS: dict[str, Callable] = {
    "reservoir": _reservoir, "phreatic": _phreatic, "beach": _beach, "rainfall": _rainfall,
    "creep": _creep, "gas": _gas, "oxygen": _oxygen, "baseline": _baseline,
    **PROCESS_MODELS,
}


def model_dependencies(params: Mapping) -> list[str]:
    """The other signals a model needs built first."""
    deps = [str(params["follows"])] if "follows" in params else []
    if isinstance(params.get("displaced_by"), Mapping):
        deps += list(params["displaced_by"])
    return deps


def build_model(name: str, params: Mapping, duration: float,
                seconds: Callable[[object, str], float], deps: Mapping[str, Model]) -> Model:
    """Build model `name` for a scenario lasting `duration` s; `deps` holds the built signals
    it follows; `seconds` parses durations ('36h')."""
    if name not in MODELS:
        raise ModelError(f"model: unknown {name!r} (known: {', '.join(sorted(MODELS))})")
    try:
        return MODELS[name](params, duration, seconds, deps)
    except KeyError as exc:
        raise ModelError(f"{exc.args[0]}: missing") from None
