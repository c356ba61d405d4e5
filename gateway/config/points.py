"""`[[points]]` of a site config: each measured point (its device's register, quantity, unit,
conversion, thresholds, detectors and their parameters) or formula point (computed from
measured points), checked against the devices' profiles and against each other."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from detectors.registry import detectors_for
from gateway.config.detector_params import (
    LIVE_DETECTORS,
    detector_param_spec,
    detector_params_problem,
)
from gateway.config.devices import word_order
from gateway.config.model import Conversion, Device, Formula, Point
from gateway.config.quantities import DERIVED_LEVELS, QUANTITIES
from gateway.config.reader import Reader, parse_duration, table_array
from gateway.config.thresholds import build_thresholds

__all__ = ["CONVERSIONS", "FORMULAS", "build_points"]

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
_DURATION_PARAMS = {"window", "barometer_max_age"}
_POINT_KEYS = {"name", "quantity", "unit", "device", "channel", "conversion", "thresholds",
               "detectors", "description", "plausible_min", "plausible_max", "word_order",
               "formula", "deadband", "max_silence", "detector", "station", "manual_tolerance"}
FORMULAS = {"difference": ("minuend", "subtrahend")}


def build_points(doc: dict, r: Reader, devices: dict[str, Device]) -> list[Point]:
    out: list[Point] = []
    names: set[str] = set()
    quantity_defaults = _detector_defaults(doc, r)
    for i, pt in enumerate(table_array(doc, "points", r)):
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
            thresholds = build_thresholds(r.table(pt, "thresholds", f"{p}.thresholds"),
                                     f"{p}.thresholds", r, direction_default)
        elif quantity in DERIVED_LEVELS:
            # a standard gives this quantity's levels: a new site is armed from day one
            derived = build_thresholds(dict(DERIVED_LEVELS[quantity]), f"{p}.thresholds", r,
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
            word_order=word_order(pt, p, r), formula=formula,
            deadband=r.get(pt, "deadband", p, float, 0.0),
            max_silence=r.duration(pt, "max_silence", p, 3600.0) or 3600.0,
            detector_params=tuple((d, tuple(sorted(v.items()))) for d, v in params.items() if v),
            station=r.get(pt, "station", p, str, ""),
            manual_tolerance=_tolerance(pt, p, r),
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


def _tolerance(pt: dict, p: str, r: Reader) -> float | None:
    """`manual_tolerance`: how far a manual reading may lie from the automatic one."""
    value = r.get(pt, "manual_tolerance", p, float, None)
    if value is not None and not (0 < value < float("inf")):
        r.problem(f"{p}.manual_tolerance", f"must be a positive number, got {value!r}",
                  "in the point's unit, e.g. 0.05 for a water level in m")
        return None
    return value


def _formula(pt: dict, p: str, r: Reader) -> Formula | None:
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


def _conversion(pt: dict, p: str, r: Reader, device: Device | None) -> Conversion:
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


def _param_value(value: Any, kind: str, shape: tuple[int, ...], path: str, r: Reader) -> Any:
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


def _detector_tables(doc: dict, path: str, r: Reader) -> dict[str, dict[str, Any]]:
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


def _detector_defaults(doc: dict, r: Reader) -> dict[str, dict[str, dict[str, Any]]]:
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
