"""The monitored quantities of the field (docs/requirements.md R1): unit, which way is worse,
whether a quantity is a tailings-pond item (docs/standards.md#gb-39496-2020-552), and its Chinese
and English names. Those of hazardous-chemical sites and metallurgy works (gases in %LEL and
ppm, storage tanks, furnace cooling water) are explained in docs/chemical_metallurgy.md."""

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
    # hazardous-chemical sites (docs/chemical_metallurgy.md#quantities)
    "combustible_gas": Quantity("%LEL", "upper", False, "可燃气体", "combustible gas"),
    "nh3": Quantity("ppm", "upper", False, "氨", "ammonia"),
    "cl2": Quantity("ppm", "upper", False, "氯气", "chlorine"),
    "tank_level": Quantity("m", "upper", False, "储罐液位", "storage-tank level"),
    "tank_temperature": Quantity("degC", "upper", False, "储罐温度", "storage-tank temperature"),
    "tank_pressure": Quantity("kPa", "upper", False, "储罐压力", "storage-tank pressure"),
    # metallurgy works: furnace cooling water (its CO is `co`)
    "cooling_water_flow": Quantity("m3/h", "lower", False, "冷却水流量", "cooling-water flow"),
    "cooling_water_temp": Quantity("degC", "upper", False, "冷却水温度",
                                   "cooling-water temperature"),
    "cooling_flow_diff": Quantity("m3/h", "upper", False, "冷却水进出水流量差",
                                  "cooling-water flow difference (in - out)"),
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
#
# GB/T 50493-2019 fixes the two alarm levels of gas detection in process plants: combustible gas
# at most 25 % and 50 % LEL, toxic gas at most 100 % and 200 % of its occupational exposure limit
# (docs/chemical_metallurgy.md#gbt-50493-2019-alarm-levels); MineWatch's colours put the first
# level at orange and the second at red (docs/chemical_metallurgy.md#the-four-colours). The toxic
# levels are the limits in mg/m³ converted to ppm at 0 °C, rounded down to 0.1 ppm (1 ppm for
# ammonia), so they are at or below the limit at any reference temperature the limit is read at
# (docs/chemical_metallurgy.md#converting-mgm3-to-ppm). CO and H2S get none: the coal-mine rules, the
# gas-works rules of metallurgy and GB/T 50493 give them different levels, so the site's
# template sets them.
DERIVED_LEVELS: dict[str, dict[str, float]] = {
    "rainfall_24h": {"blue": 25.0, "yellow": 50.0},
    "rainfall_1h": {"blue": 8.1, "yellow": 16.0},
    "combustible_gas": {"orange": 25.0, "red": 50.0},
    "nh3": {"orange": 26.0, "red": 52.0},
    "cl2": {"orange": 0.3, "red": 0.6},
}

# A mine's gas points with no levels in the config (site kinds underground_mine and open_pit):
# the coal-mine values of docs/standards.md#coal-mine-methane-limits, the only ones read in a
# source for underground air (the metal/non-metal mine rules, GB 16423-2020, were not readable):
# CH4 alarm 1.0 % = orange, power cut 1.5 % = red, power back only below 1.0 %; CO 24 ppm,
# H2S 6.6 ppm, NO2 2.5 ppm maximum allowable = orange; O2 below 20 % = orange. Blue at half the
# alarm value and the O2 bands around it are this project's mapping (docs/requirements.md R3).
# Chemical plants and metallurgy works set their own (their standards differ).
MINE_DERIVED_LEVELS: dict[str, dict] = {
    "ch4": {"blue": 0.5, "orange": 1.0, "red": 1.5, "restore": {"red": 1.0, "orange": 0.95}},
    "co": {"blue": 12.0, "orange": 24.0},
    "h2s": {"blue": 3.3, "orange": 6.6},
    "no2": {"blue": 1.25, "orange": 2.5},
    "o2": {"direction": "both", "lower": {"blue": 20.5, "orange": 20.0, "red": 19.5},
           "upper": {"red": 23.5}},
}
MINE_KINDS = ("underground_mine", "open_pit")
# GB 51108-2015 §8.3.4: the phreatic line's orange level is 1.1 times its red burial depth
PHREATIC_ORANGE_OF_RED = 1.1

# What a value of each quantity can physically be, in its unit above: a threshold outside is a
# level no reading ever reaches (a red of 1e300 m switches red off as surely as no red at all),
# so it is refused with this range. Wide on purpose: they catch a slip of the keyboard or a
# unit mix-up (a water level in mm), never a real site. A point that sets another `unit` is
# checked only for finite numbers. Elevations run from the Dead Sea shore to the highest mines;
# gas concentrations from nothing to all of the air.
ELEVATION = (-500.0, 9000.0)
SPANS: dict[str, tuple[float, float]] = {
    "water_level": ELEVATION,
    "freeboard": (-100.0, 1000.0),  # below zero: the pond is over its crest
    "dry_beach_length": (0.0, 20000.0),
    "beach_crest_elev": ELEVATION,
    "phreatic_depth": (-100.0, 1000.0),  # below zero: water above the ground
    "piezometric_head": ELEVATION,
    "pore_pressure": (-200.0, 20000.0),
    "gnss_disp": (-1e6, 1e6),  # a kilometre of movement, in mm
    "inclinometer_disp": (-1e5, 1e5),
    "rainfall_1h": (0.0, 1000.0),
    "rainfall_24h": (0.0, 5000.0),
    "seepage_flow": (0.0, 1e6),
    "turbidity": (0.0, 1e5),
    "ch4": (0.0, 100.0),
    "co": (0.0, 1e6),
    "h2s": (0.0, 1e6),
    "no2": (0.0, 1e6),
    "o2": (0.0, 100.0),
    "combustible_gas": (0.0, 100.0),
    "nh3": (0.0, 1e6),
    "cl2": (0.0, 1e6),
    "tank_level": (-10.0, 1000.0),
    "tank_temperature": (-273.15, 2000.0),
    "tank_pressure": (-101.325, 1e6),
    "cooling_water_flow": (0.0, 1e6),
    "cooling_water_temp": (-50.0, 200.0),
    "cooling_flow_diff": (-1e6, 1e6),
    "temperature": (-273.15, 3000.0),
    "barometric_pressure": (0.0, 200.0),
    "generic": (-1e12, 1e12),
}
ANY_UNIT = (-1e12, 1e12)  # a point in another unit than its quantity's


def value_span(quantity: str, unit: str) -> tuple[float, float]:
    """The range a value (and so a threshold) of this quantity can take in this unit."""
    q = QUANTITIES.get(quantity)
    if q is None or unit != q.unit:
        return ANY_UNIT
    return SPANS.get(quantity, ANY_UNIT)
