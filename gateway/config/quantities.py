"""The monitored quantities of the field (docs/requirements.md R1): unit, which way is worse,
whether a quantity is a tailings-pond item (docs/standards.md#gb-39496-2020-552), and its Chinese
and English names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    unit: str
    direction: str  # upper = higher is worse, lower = lower is worse, both (O2)
    tailings: bool
    zh: str
    en: str


QUANTITIES: dict[str, Quantity] = {
    "water_level": Quantity("m", "upper", True, "库水位", "reservoir water level"),
    "freeboard": Quantity("m", "lower", True, "安全超高", "safety freeboard"),
    "dry_beach_length": Quantity("m", "lower", True, "干滩长度", "dry beach length"),
    "beach_crest_elev": Quantity("m", "lower", True, "滩顶高程", "beach crest elevation"),
    "phreatic_depth": Quantity("m", "lower", True, "浸润线埋深", "phreatic line burial depth"),
    "piezometric_head": Quantity("m", "upper", True, "测压管水头", "piezometric head"),
    "pore_pressure": Quantity("kPa", "upper", True, "孔隙水压力", "pore-water pressure"),
    "gnss_disp": Quantity("mm", "upper", True, "表面位移", "surface displacement (GNSS)"),
    "inclinometer_disp": Quantity("mm", "upper", True, "内部位移", "internal displacement"),
    "rainfall_1h": Quantity("mm", "upper", True, "1小时降雨量", "rainfall in 1 h"),
    "rainfall_24h": Quantity("mm", "upper", True, "24小时降雨量", "rainfall in 24 h"),
    "seepage_flow": Quantity("L/s", "upper", True, "渗流量", "seepage flow"),
    "turbidity": Quantity("NTU", "upper", True, "浑浊度", "turbidity"),
    "ch4": Quantity("%vol", "upper", False, "甲烷", "methane"),
    "co": Quantity("ppm", "upper", False, "一氧化碳", "carbon monoxide"),
    "h2s": Quantity("ppm", "upper", False, "硫化氢", "hydrogen sulphide"),
    "no2": Quantity("ppm", "upper", False, "二氧化氮", "nitrogen dioxide"),
    "o2": Quantity("%vol", "both", False, "氧气", "oxygen"),
    "temperature": Quantity("degC", "upper", False, "温度", "temperature"),
    "barometric_pressure": Quantity("kPa", "both", False, "大气压", "barometric pressure"),
    "generic": Quantity("", "upper", False, "监测值", "measured value"),
}

TAILINGS_ITEMS = frozenset(k for k, q in QUANTITIES.items() if q.tailings)

# Levels a point of these quantities gets when its config sets none (docs/requirements.md R3):
# the rain intensity classes of GB/T 28592-2012 (precipitation grades: 24 h 大雨 25.0-49.9 mm,
# 暴雨 from 50 mm; 1 h 大雨 8.1-15.9 mm, 暴雨 from 16 mm). GB 51108-2015 §8.3.7 sets the
# yellow rainfall warning at the 暴雨 (rainstorm) class; blue at the class below is this
# project's choice. Orange and red depend on the pond's flood routing and are never derived.
DERIVED_LEVELS: dict[str, dict[str, float]] = {
    "rainfall_24h": {"blue": 25.0, "yellow": 50.0},
    "rainfall_1h": {"blue": 8.1, "yellow": 16.0},
}
