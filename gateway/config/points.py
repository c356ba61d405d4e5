"""`[[points]]` of a site config: each measured point (its device's register, quantity, unit,
conversion, thresholds, detectors and their parameters) or formula point (computed from
measured points), checked against the devices' profiles and against each other."""

from __future__ import annotations

import re
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
from gateway.config.quantities import (
    DERIVED_LEVELS,
    MINE_DERIVED_LEVELS,
    MINE_KINDS,
    PHREATIC_ORANGE_OF_RED,
    QUANTITIES,
    value_span,
)
from gateway.config.reader import DurationError, Reader, parse_duration, table_array
from gateway.config.thresholds import build_thresholds
from gateway.i18n import Text, detector_problem_zh, t

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
# a conversion factor of 0 makes every reading the same number: no level is ever reached
_NONZERO_PARAMS = {"scale": "linear", "k": "vibrating_wire"}
AGE_RANGE = (1.0, 7 * 86400.0)  # formula and barometer inputs: how old a value may be


def _phreatic_orange(table: dict, quantity: str) -> tuple[dict, tuple[str, ...]]:
    """A phreatic line with a red level and no orange gets orange = 1.1 x red (GB 51108-2015
    §8.3.4), when that keeps the levels in order; returns the table and what was added."""
    if quantity != "phreatic_depth" or not isinstance(table, dict):
        return table, ()
    both = isinstance(table.get("lower"), dict)
    side = table["lower"] if both else table
    red = side.get("red")
    if not isinstance(red, int | float) or isinstance(red, bool) or "orange" in side:
        return table, ()
    orange = round(PHREATIC_ORANGE_OF_RED * red, 6)
    above = [side[k] for k in ("yellow", "blue") if isinstance(side.get(k), int | float)]
    if any(orange > v for v in above):  # lower is worse: orange must not pass yellow or blue
        return table, ()
    new_side = {**side, "orange": orange}
    return ({**table, "lower": new_side} if both else new_side), ("orange",)


def build_points(doc: dict, r: Reader, devices: dict[str, Device]) -> list[Point]:
    out: list[Point] = []
    names: set[str] = set()
    quantity_defaults = _detector_defaults(doc, r)
    site = doc.get("site")
    site_kind = site.get("kind") if isinstance(site, dict) else None
    for i, pt in enumerate(table_array(doc, "points", r)):
        p = f"points[{i}]"
        r.known(pt, _POINT_KEYS, p)
        name = r.get(pt, "name", p, str, f"point{i}", required=True)
        if name in names:
            r.problem(f"{p}.name", t(f"duplicate point name {name!r}", f"测点名 {name!r} 重复"))
        names.add(name)
        quantity = r.get(pt, "quantity", p, str, "generic", required=True)
        qinfo = QUANTITIES.get(quantity)
        if qinfo is None:
            known = ", ".join(sorted(QUANTITIES))
            r.problem(f"{p}.quantity", t(f"unknown quantity {quantity!r}",
                                         f"未知的监测量 {quantity!r}"),
                      t(f"one of {known}", f"可选：{known}"))
        unit = r.get(pt, "unit", p, str, qinfo.unit if qinfo else "")
        formula = _formula(pt, p, r) if "formula" in pt else None
        if formula is not None and ("device" in pt or "channel" in pt):
            r.problem(p, t("a point with a formula has no device or channel of its own",
                           "公式测点没有自己的 device 或 channel"))
        dev_name = r.get(pt, "device", p, str, "", required=formula is None)
        device = devices.get(dev_name)
        if dev_name and device is None:
            known = ", ".join(sorted(devices))
            r.problem(f"{p}.device", t(f"unknown device {dev_name!r}", f"未知的设备 {dev_name!r}"),
                      t(f"defined devices: {known or 'none'}", f"已定义的设备：{known or '无'}"))
        channel = r.get(pt, "channel", p, str, "", required=formula is None)
        if device is not None and channel:
            names_in_profile = {reg.name for reg in device.profile.registers}
            if channel not in names_in_profile:
                regs = ", ".join(sorted(names_in_profile))
                r.problem(f"{p}.channel", t(f"device {dev_name!r} (profile "
                                            f"{device.profile.name!r}) has no register "
                                            f"{channel!r}",
                                            f"设备 {dev_name!r}（型号 {device.profile.name!r}）"
                                            f"没有寄存器 {channel!r}"),
                          t(f"registers: {regs}", f"可用寄存器：{regs}"))
        conversion = _conversion(pt, p, r, device)
        plausible = _plausible(pt, p, r)
        direction_default = qinfo.direction if qinfo else "upper"
        span = value_span(quantity, unit)
        thresholds = None
        standard = DERIVED_LEVELS.get(quantity) or (
            MINE_DERIVED_LEVELS.get(quantity) if site_kind in MINE_KINDS else None)
        if "thresholds" in pt:
            table, added = _phreatic_orange(r.table(pt, "thresholds", f"{p}.thresholds"),
                                            quantity)
            thresholds = build_thresholds(table, f"{p}.thresholds", r, direction_default, span,
                                          plausible)
            if thresholds is not None and added:
                thresholds = replace(thresholds, derived_levels=added)
        elif standard is not None:
            # a standard gives this quantity's levels: a new site is armed from day one
            derived = build_thresholds(dict(standard), f"{p}.thresholds", r, direction_default,
                                       span, plausible)
            thresholds = replace(derived, derived=True) if derived is not None else None
        default = list(detectors_for(quantity)) if qinfo else ["threshold", "stuck"]
        if thresholds is not None and "threshold" not in default:
            # levels given to a quantity whose defaults grade another way (`generic`): the
            # levels are what the site asked for, so the default set looks at them
            default.insert(0, "threshold")
        detectors = r.get(pt, "detectors", p, list, default)
        if not all(isinstance(x, str) for x in detectors):
            r.problem(f"{p}.detectors", t("expected a list of detector names",
                                          "应为检测器名称的列表"))
            detectors = default
        unknown_det = [x for x in detectors if x not in LIVE_DETECTORS]
        if unknown_det:
            known = ", ".join(sorted(LIVE_DETECTORS))
            r.problem(f"{p}.detectors", t(f"unknown detector(s) {unknown_det}",
                                          f"未知的检测器 {unknown_det}"),
                      t(f"one of {known}", f"可选：{known}"))
        if thresholds is not None and "threshold" not in detectors:
            # the levels would be set and never looked at: the quietest way to disarm a point
            r.problem(f"{p}.detectors", t("the point has thresholds but does not run the "
                                          "'threshold' detector, so no level would ever be "
                                          "raised", "该测点设置了阈值，但没有运行 'threshold' "
                                          "检测器，任何级别都不会触发"),
                      t("add \"threshold\" to detectors", "在 detectors 中加入 \"threshold\""))
        own = _detector_tables(r.table(pt, "detector", f"{p}.detector"), f"{p}.detector", r)
        unused = sorted(set(own) - set(detectors))
        if unused:
            r.problem(f"{p}.detector.{unused[0]}", t(f"parameters for {unused[0]!r}, which this "
                                                     "point does not run",
                                                     f"给了 {unused[0]!r} 的参数，但该测点不运行"
                                                     "这个检测器"),
                      t(f"its detectors: {', '.join(detectors)}",
                        f"该测点的检测器：{', '.join(detectors)}"))
        params = {d: {**quantity_defaults.get(quantity, {}).get(d, {}), **own.get(d, {})}
                  for d in detectors}
        deadband = r.get(pt, "deadband", p, float, 0.0)
        if deadband < 0:
            r.problem(f"{p}.deadband", t("must not be negative", "不能为负"))
        out.append(Point(
            name=name, index=len(out), quantity=quantity, unit=unit, device=dev_name,
            channel=channel, conversion=conversion, thresholds=thresholds,
            detectors=tuple(detectors), description=r.get(pt, "description", p, str, ""),
            plausible_min=plausible[0], plausible_max=plausible[1],
            word_order=word_order(pt, p, r), formula=formula,
            deadband=max(deadband, 0.0),
            max_silence=r.duration(pt, "max_silence", p, 3600.0, lo=1.0, hi=7 * 86400.0),
            detector_params=tuple((d, tuple(sorted(v.items()))) for d, v in params.items() if v),
            station=r.get(pt, "station", p, str, ""),
            manual_tolerance=_tolerance(pt, p, r),
        ))
    _check_inputs(out, devices, r)
    return out


def _plausible(pt: dict, p: str, r: Reader) -> tuple[float | None, float | None]:
    """plausible_min and plausible_max (None: no limit); a refused pair is no limit."""
    lo = r.get(pt, "plausible_min", p, float, None)
    hi = r.get(pt, "plausible_max", p, float, None)
    if lo is not None and hi is not None and lo >= hi:
        r.problem(f"{p}.plausible_min", t(f"{lo:g} is not below plausible_max {hi:g}",
                                          f"{lo:g} 不小于 plausible_max {hi:g}"),
                  t("every reading would be implausible", "所有读数都会被判为不合理"))
        return None, None
    return lo, hi


def _check_inputs(out: list[Point], devices: dict[str, Device], r: Reader) -> None:
    """Formula inputs and barometers: defined, measured, and fresh enough for their periods."""
    by_name = {p.name: p for p in out}
    for i, p in enumerate(out):
        for name in p.formula.inputs if p.formula else ():
            src = by_name.get(name)
            if src is None:
                r.problem(f"points[{i}].formula", t(f"input point {name!r} is not defined",
                                                    f"输入测点 {name!r} 没有定义"))
            elif src.formula is not None:
                r.problem(f"points[{i}].formula", t(f"input point {name!r} is itself a formula",
                                                    f"输入测点 {name!r} 本身是公式测点"),
                          t("formulas take measured points as inputs", "公式的输入必须是实测测点"))
        if p.formula is not None:
            inputs = [by_name[n] for n in p.formula.inputs if n in by_name]
            periods = {devices[s.device].period for s in inputs if s.device in devices}
            if len({s.device for s in inputs}) > 1 and periods and \
                    p.formula.max_age < max(periods):
                _too_young(r, f"points[{i}].formula.max_age", p.formula.max_age, max(periods))
        baro = p.conversion.params.get("barometer")
        if baro is not None:
            src = by_name.get(baro)
            if src is None:
                r.problem(f"points[{i}].conversion.barometer", t(f"point {baro!r} is not defined",
                                                                 f"测点 {baro!r} 没有定义"))
            elif src.quantity != "barometric_pressure" or src.formula is not None:
                r.problem(f"points[{i}].conversion.barometer",
                          t(f"point {baro!r} is {src.quantity}, not a measured "
                            "barometric_pressure",
                            f"测点 {baro!r} 是 {src.quantity}，不是实测的 barometric_pressure"))
            elif src.device != p.device and src.device in devices:
                age = p.conversion.params.get("barometer_max_age", 3600.0)
                if age < devices[src.device].period:
                    _too_young(r, f"points[{i}].conversion.barometer_max_age", age,
                               devices[src.device].period)


def _too_young(r: Reader, path: str, age: float, period: float) -> None:
    r.problem(path, t(f"{age:g} s is shorter than the {period:g} s period of an input's device: "
                      "between its polls the value would be stale and never graded",
                      f"{age:g} 秒短于输入设备的采集周期 {period:g} 秒：两次采集之间该值会过期，"
                      "永远不会被判级"),
              t(f"at least the input's period ({period:g} s)",
                f"至少等于输入的采集周期（{period:g} 秒）"))


def _tolerance(pt: dict, p: str, r: Reader) -> float | None:
    """`manual_tolerance`: how far a manual reading may lie from the automatic one."""
    value = r.get(pt, "manual_tolerance", p, float, None)
    if value is not None and not (0 < value < float("inf")):
        r.problem(f"{p}.manual_tolerance", t(f"must be a positive number, got {value!r}",
                                             f"应为正数，实际为 {value!r}"),
                  t("in the point's unit, e.g. 0.05 for a water level in m",
                    "单位与测点相同，例如水位取 0.05（米）"))
        return None
    return value


def _formula(pt: dict, p: str, r: Reader) -> Formula | None:
    f = r.table(pt, "formula", f"{p}.formula")
    kind = r.get(f, "kind", f"{p}.formula", str, "difference")
    if kind not in FORMULAS:
        r.problem(f"{p}.formula.kind", t(f"unknown formula {kind!r}", f"未知的公式 {kind!r}"),
                  t(f"one of {sorted(FORMULAS)}", f"可选：{sorted(FORMULAS)}"))
        return None
    r.known(f, {"kind", "max_age", *FORMULAS[kind]}, f"{p}.formula")
    inputs = tuple(r.get(f, key, f"{p}.formula", str, "", required=True)
                   for key in FORMULAS[kind])
    max_age = r.duration(f, "max_age", f"{p}.formula", 3600.0, lo=AGE_RANGE[0], hi=AGE_RANGE[1])
    return Formula(kind, inputs, max_age)


def _conversion(pt: dict, p: str, r: Reader, device: Device | None) -> Conversion:
    raw = pt.get("conversion", {"kind": "none"})
    if not isinstance(raw, dict):
        r.problem(f"{p}.conversion", t("expected a table such as { kind = \"radar_level\", ... }",
                                       "应为表，例如 { kind = \"radar_level\", ... }"))
        return Conversion("none")
    kind = r.get(raw, "kind", f"{p}.conversion", str, "none")
    if kind not in CONVERSIONS:
        r.problem(f"{p}.conversion.kind", t(f"unknown conversion {kind!r}",
                                            f"未知的换算方式 {kind!r}"),
                  t(f"one of {', '.join(CONVERSIONS)}", f"可选：{', '.join(CONVERSIONS)}"))
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
                          t(f"device profile {device.profile.name!r} has no register {v!r}",
                            f"设备型号 {device.profile.name!r} 没有寄存器 {v!r}"))
        elif key in _POINT_PARAMS:
            v = r.get(raw, key, where, str, None, required=needed)
        elif key in _DURATION_PARAMS:
            v = r.duration(raw, key, where, None, required=needed, lo=AGE_RANGE[0],
                           hi=AGE_RANGE[1])
        else:
            v = r.get(raw, key, where, float, None, required=needed)
            if v == 0 and _NONZERO_PARAMS.get(key) == kind:
                r.problem(f"{where}.{key}", t(f"{key} = 0 makes every reading the same number, "
                                              "so no level is ever reached",
                                              f"{key} = 0 会使所有读数都相同，任何级别都不会触发"))
        if v is not None:
            params[key] = v
    quantity = pt.get("quantity")
    if kind == "vibrating_wire" and quantity == "phreatic_depth" and "mouth_elevation" not in params:
        r.problem(f"{p}.conversion.mouth_elevation",
                  t("phreatic depth needs the elevation of the borehole mouth (ground surface)",
                    "浸润线埋深需要孔口（地面）高程"),
                  t("phreatic_depth = mouth_elevation - piezometric head "
                    "(docs/conversions.md#vibrating-wire-piezometer)",
                    "浸润线埋深 = 孔口高程 mouth_elevation - 测压管水头"
                    "（docs/conversions.md#vibrating-wire-piezometer）"))
    if "barometer" in params and "q0" not in params:
        r.problem(f"{p}.conversion.q0", t("a barometric correction needs q0, the barometric "
                                          "pressure (kPa) when the gauge's zero reading f0 was "
                                          "taken",
                                          "气压修正需要 q0，即读取零点读数 f0 时的大气压（kPa）"),
                  t("P = k (F - F0) + b (T - T0) + (q0 - Q) "
                    "(docs/conversions.md#vibrating-wire-piezometer)",
                    "P = k (F - F0) + b (T - T0) + (q0 - Q)"
                    "（docs/conversions.md#vibrating-wire-piezometer）"))
    if params.get("barometer_sign", 1.0) not in (1.0, -1.0):
        r.problem(f"{p}.conversion.barometer_sign", t("must be 1 or -1", "只能是 1 或 -1"))
    return Conversion(kind, params)


def _param_value(value: Any, kind: str, shape: tuple[int, ...], path: str, r: Reader) -> Any:
    """One parameter, checked against its kind and shape (a level set is 4 numbers, NaN for
    an unused level); None after a problem was recorded."""
    if shape:
        if not isinstance(value, list) or len(value) != shape[0]:
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            r.problem(path, t(f"expected a list of {shape[0]} numbers, got {shown}",
                              f"应为 {shape[0]} 个数的列表，实际为 {shown}"),
                      t("blue, yellow, orange, red; nan for an unused level",
                        "依次为 blue、yellow、orange、red；不用的级别写 nan"))
            return None
        items = [_param_value(v, kind, (), path, r) for v in value]
        return None if any(v is None for v in items) else tuple(items)
    problem = _param_problem(value, kind)
    if problem is not None:
        r.problem(path, problem)
        return None
    if kind == "duration":
        if isinstance(value, float) and value == float("inf"):
            return value  # a detector's "never" (min_stuck_s = inf); its validate judges
        try:
            return parse_duration(value)
        except DurationError as exc:
            r.problem(path, exc.text)
            return None
    return value if kind in ("bool", "int") else float(value)


def _param_problem(value: Any, kind: str) -> Text | None:
    """Why `value` is not a detector parameter of `kind`, or None."""
    if kind == "bool":
        return None if isinstance(value, bool) else \
            t(f"expected true or false, got {value!r}", f"应为 true 或 false，实际为 {value!r}")
    if isinstance(value, bool):
        return t(f"expected a number, got {value!r}", f"应为数，实际为 {value!r}")
    if kind == "int":
        if not isinstance(value, int):
            return t(f"expected an integer, got {value!r}", f"应为整数，实际为 {value!r}")
        if not -2**31 < value < 2**31:  # the kernels hold counts as int32
            return t(f"{value} is out of range for a count", f"{value} 超出计数的范围")
        return None
    if kind == "duration":
        return None
    if not isinstance(value, int | float):
        return t(f"expected a number, got {value!r}", f"应为数，实际为 {value!r}")
    if isinstance(value, int) and abs(value) > 2**53:
        return t(f"a {len(str(abs(value)))}-digit integer is too large",
                 f"{len(str(abs(value)))} 位的整数过大")
    return None


def _detector_tables(doc: dict, path: str, r: Reader) -> dict[str, dict[str, Any]]:
    """`{detector: {field: value}}` from a table of detector tables, each checked: the names,
    the kinds, and the detector's own validation of the resulting parameters."""
    out: dict[str, dict[str, Any]] = {}
    for detector, table in doc.items():
        p = f"{path}.{detector}"
        if detector not in LIVE_DETECTORS:
            known = ", ".join(sorted(LIVE_DETECTORS))
            r.problem(p, t(f"unknown detector {detector!r}", f"未知的检测器 {detector!r}"),
                      t(f"one of {known}", f"可选：{known}"))
            continue
        if not isinstance(table, dict):
            r.problem(p, t("expected a table of parameters", "应为参数表"))
            continue
        spec = detector_param_spec(detector)
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in spec:
                names = ", ".join(spec)
                r.problem(f"{p}.{key}", t(f"{detector} has no parameter {key!r}",
                                          f"{detector} 没有参数 {key!r}"),
                          t(f"its parameters: {names or 'none (see thresholds)'}",
                            f"它的参数：{names or '无（见 thresholds）'}"))
                continue
            v = _param_value(value, *spec[key], f"{p}.{key}", r)
            if v is not None:
                values[key] = v
        problem = detector_params_problem(detector, values)
        if problem:
            problem = re.sub(r"^channel \d+: ", "", problem)  # one point: no channel to name
            key = next((k for k in values if k in problem), None)
            r.problem(f"{p}.{key}" if key else p, t(problem, detector_problem_zh(problem)))
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
            known = ", ".join(sorted(QUANTITIES))
            r.problem(p, t(f"unknown quantity {quantity!r}", f"未知的监测量 {quantity!r}"),
                      t(f"one of {known}", f"可选：{known}"))
            continue
        if not isinstance(table, dict):
            r.problem(p, t("expected a table of detector tables", "应为由检测器参数表组成的表"))
            continue
        out[quantity] = _detector_tables(table, p, r)
    return out
