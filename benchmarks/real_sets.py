"""The real record sets of ../shared/data as MineWatch points, and what happened in them.

Each set loads (read-only, from DATA_DIR; nothing is ever copied into the repository) into one or
more `Run`s: the rows one replay sees (a site's points at one cadence). Columns are mapped to the
quantities of gateway/config/quantities.py, converted to the units the quantity names.

WINDOWS below is the one table of what happened when, derived from ../shared/data/README.md (and,
where it says so, from looking at the data). Its kinds:
- `event`: a documented real event; a safety alert on one of its points from `early` days
  before its start to `grace` days after its end detects it (delay = first alert - start);
- `tolerated`: an alert here on these points is neither credited nor charged (e.g. a rain
  alert on a rain day; the other axis of a GNSS station during an earthquake);
- `instrument`: an instrument artefact; a fault event (or a safety alert) here flags it and is
  not charged as false.
Any other safety raise is a false alert, any other fault raise a false fault episode. Labels
for the NAB scores (SKAB's changepoints, the USGS rainfall-threshold exceedances) are computed
by the loaders, not listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from gateway.replay_input import read_export

DAY = 86400.0

# set, name, kind, points (regular expression on point names), start, end (dates, or times,
# in the set's zone; end inclusive to its last second when a date), early days, grace days
WINDOWS: list[tuple[str, str, str, str, str, str, float, float]] = [
    # Qili: two accelerations in 2016 (README: May, ~14 mm in the month; November, ~12 mm,
    # 2.85 mm/day on 11-18). The May one builds up from late April (6.8 mm in April), so an
    # alert from mid-April is an early warning, not a false one.
    ("qili", "May 2016 acceleration", "event", r"gnss_disp", "2016-05-01", "2016-05-31", 15, 10),
    ("qili", "Nov 2016 acceleration", "event", r"gnss_disp", "2016-11-01", "2016-11-30", 7, 10),
    # the water table moving with the accelerations is a legitimate warning there
    ("qili", "groundwater in May", "tolerated", r"groundwater|rain", "2016-04-15", "2016-06-10",
     0, 0),
    ("qili", "groundwater in November", "tolerated", r"groundwater|rain", "2016-10-25",
     "2016-12-10", 0, 0),
    # a rain alert says how hard it rained: with no site levels a rain point gets the rain
    # classes of GB/T 28592 (blue 25 mm / 24 h, yellow 50 mm, GB 51108 §8.3.7), so an alert is
    # right whenever it rained that much; rain alerts are neither credited nor charged
    ("qili", "rain classes", "tolerated", r"rain", "2016-01-01", "2017-12-31", 0, 0),
    # 140.5 mm of rain on 2017-06-24 moved nothing: a rain (or water table) alert is fine, a
    # displacement alert is false (so gnss_disp is not in this row)
    ("qili", "2017-06-24 rain day", "tolerated", r"rain|groundwater", "2017-06-24", "2017-07-08",
     0, 0),
    # Ridgecrest: M6.4 on 2019-07-04 17:33 UTC and M7.1 on 2019-07-06 03:19 UTC. Daily
    # solutions: P570 East steps ~53 mm (07-05 and 07-06/07), P092 North ~16 mm (07-06). The step
    # must be flagged within days; a rate alarm must not go on for weeks after (checked apart).
    ("ridgecrest", "P570 East step", "event", r"P570_E", "2019-07-04", "2019-07-07", 0, 3),
    ("ridgecrest", "P092 North step", "event", r"P092_N", "2019-07-04", "2019-07-07", 0, 3),
    ("ridgecrest", "the quakes, other axes", "tolerated", r"P570_N|P092_E", "2019-07-04",
     "2019-07-10", 0, 0),
    # Found in the data, not in the README: P513 (the quiet control) jumps ~30 mm in both axes
    # on 2016-04-06 and back on 2016-04-26, and North spikes +27 mm for one day on 2017-01-25.
    # No "one-day spike of almost a metre" (issue 13) is in these files: the largest one-day
    # departures from the local median are these 24-30 mm ones (P570: 13 mm, P092: 7 mm).
    ("ridgecrest", "P513 20-day offset", "instrument", r"P513_[NE]", "2016-04-06", "2016-04-26",
     0, 2),
    ("ridgecrest", "P513 one-day spike", "instrument", r"P513_N", "2017-01-25", "2017-01-25",
     0, 2),
    # USGS Mukilteo: storms of 2015-11-14 (1.73 in/day at MVD116) and 2015-12-08 (1.41 in/day)
    ("usgs", "2015-11-14 storm", "event", r"rain", "2015-11-14", "2015-11-14", 0, 1),
    ("usgs", "2015-12-08 storm", "event", r"rain", "2015-12-08", "2015-12-08", 0, 1),
    # other rain alerts: the rain classes, as for Qili (the storms above are credited first)
    ("usgs", "rain classes", "tolerated", r"rain", "2015-08-01", "2015-12-31", 0, 0),
    # Tailings pond: no failure, no window: every safety alert there is false.
]
RAIN_NAB_WINDOW_S = 24 * 3600.0  # an alarm within a day of a threshold exceedance's start
SKAB_NAB_WINDOW_S = 60.0  # SKAB's own


@dataclass
class Run:
    """The rows of one replay: t[m] epoch s, x[m, c] in the quantities' units."""

    name: str
    t: np.ndarray
    names: list[str]
    x: np.ndarray
    quantities: dict[str, str]
    # NAB labels: changepoint[m] (bool) and the points whose scores make the run's alarm
    changepoint: np.ndarray | None = None
    nab_points: list[str] = field(default_factory=list)
    nab_window_s: float = 0.0
    # windows computed from labels (SKAB): (name, kind, points regex, start, end, early, grace)
    windows: list[tuple[str, str, str, float, float, float, float]] = field(default_factory=list)


@dataclass
class RealSet:
    name: str
    title: str
    zone: str
    runs: list[Run]
    windows: list[tuple[str, str, str, float, float, float, float]] = field(default_factory=list)


def _when(text: str, zone: ZoneInfo, end: bool) -> float:
    t = datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()
    return t + DAY - 1 if end and len(text) == 10 else t


def _windows(set_name: str, zone: ZoneInfo) -> list[tuple]:
    return [(name, kind, pattern, _when(a, zone, False), _when(b, zone, True), early * DAY,
             grace * DAY)
            for s, name, kind, pattern, a, b, early, grace in WINDOWS if s == set_name]


def points_of(pattern: str, names: list[str]) -> list[str]:
    return [n for n in names if re.search(pattern, n)]


def qili(data: Path) -> RealSet:
    zone = ZoneInfo("Asia/Shanghai")
    t, names, x, _ = read_export(data / "qili_landslide" / "qili_daily.csv", tz=zone)
    rename = {"rain_mm_per_day": "rain_24h", "groundwater_depth_m": "groundwater_depth",
              "gnss_cum_disp_mm": "gnss_disp"}
    quantity = {"rain_24h": "rainfall_24h", "groundwater_depth": "phreatic_depth",
                "gnss_disp": "gnss_disp"}
    cols = [rename[n] for n in names]
    run = Run("qili", t, cols, x, {c: quantity[c] for c in cols})
    return RealSet("qili", "Qili landslide, daily GNSS / groundwater / rain (2016-17)",
                   zone.key, [run], _windows("qili", zone))


def tailings_pond(data: Path) -> RealSet:
    # the export's local zone is not stated; no event depends on it (no windows)
    zone = ZoneInfo("UTC")
    t, names, x, _ = read_export(data / "tailings_pond_level" / "pp_station.csv", tz=zone)
    col = {n: x[:, k] for k, n in enumerate(names)}
    channels = {"pond_level": ("water_level", col["Primary Pond Level[m]"]),
                "barometer": ("barometric_pressure", col["BP_mbar"] / 10.0),  # mbar -> kPa
                "panel_temp": ("temperature", col["PanelTemp[degC]"]),
                "transducer_temp": ("temperature", col["SmartPT_Temp[N/A]"])}
    run = Run("pond", t, list(channels), np.column_stack([v for _, v in channels.values()]),
              {k: q for k, (q, _) in channels.items()})
    return RealSet("tailings_pond", "Tailings pond, 5-min level / barometer / temperatures "
                   "(2020, no event)", zone.key, [run], [])


def ridgecrest(data: Path) -> RealSet:
    zone = ZoneInfo("UTC")
    runs = []
    for station in ("P570", "P092", "P513"):
        path = data / "gnss_earthquake_step" / f"position.{station}.cwu.nam14.csv"
        t, _, x, _ = read_export(path, tz=zone)
        names = [f"{station}_N", f"{station}_E"]
        runs.append(Run(station, t, names, x, dict.fromkeys(names, "gnss_disp")))
    return RealSet("ridgecrest", "Ridgecrest 2019 earthquakes, daily GNSS North/East "
                   "(2006-24)", zone.key, runs, _windows("ridgecrest", zone))


# USGS vibrating-wire calibration (../shared/data/README.md, from the USGS script lvl_m.py)
_VW = {1: {"abc": (-9.5792e-5, -2.3260e-3, 828.53), "t_offset": 0.3, "m": 0.0380, "b": -0.762,
           "head": 0.1},
       2: {"abc": (-1.0171e-4, 1.6517e-2, 772.93), "t_offset": 0.1, "m": 0.0208, "b": -0.414,
           "head": -0.2}}
_PSI_KPA = 6.89476


def vw_pore_pressure(reading: np.ndarray, ohms: np.ndarray, baro_kpa: np.ndarray,
                     gauge: int) -> tuple[np.ndarray, np.ndarray]:
    """(pore pressure kPa, level m) of a raw VW reading with its thermistor and the barometer."""
    c = _VW[gauge]
    a, b, c0 = c["abc"]
    kpa = a * reading**2 + b * reading + c0
    ln = np.log(ohms)
    temp = 1.0 / (1.4051e-3 + 2.369e-4 * ln + 1.019e-7 * ln**3) - 273.15 + c["t_offset"]
    kpa = kpa + ((20.2 - temp) * c["m"] + c["b"]) * _PSI_KPA - (baro_kpa - 101.3)
    return kpa, kpa * 0.10200 + c["head"]


def _rain(path: Path, zone: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """t and rain in mm per 15-minute row of a `Y M D h m rain_in` file."""
    raw = np.loadtxt(path, ndmin=2)
    t = np.array([datetime(*map(int, r[:5]), tzinfo=zone).timestamp() for r in raw])
    # MVD116 and MLP each repeat an hour once (the logger's clock set back 45 min): the rows
    # earlier than one already read are dropped, as `minewatch replay` does (replay_input)
    keep = t > np.r_[-np.inf, np.maximum.accumulate(t)[:-1]]
    return t[keep], raw[keep, 5] * 25.4


def _rolling(t: np.ndarray, v: np.ndarray, window_s: float) -> np.ndarray:
    """The sum of v over (t - window, t]."""
    c = np.r_[0.0, np.cumsum(np.nan_to_num(v))]
    lo = np.searchsorted(t, t - window_s, side="right")
    return c[1:] - c[lo]


def exceedance_starts(t: np.ndarray, rain_mm: np.ndarray, thresh: Path) -> np.ndarray:
    """Rows where the station's cumulative rainfall threshold (thresh_in.txt: P3 >= intercept
    + slope x P15, inches; P3 the last `Recent_Hours`, P15 the `Antecedent_Hours` before them)
    starts to be exceeded; exceedances closer than `Hours_Between_Storms` are one. The
    intensity-duration threshold is not used: its interpolation points are not in the set."""
    conf = {}
    for line in thresh.read_text().splitlines():
        key, _, value = line.strip().partition(",")
        conf[key] = value.split(",")[0].strip()
    recent, ante = float(conf["Recent_Hours"]) * 3600, float(conf["Antecedent_Hours"]) * 3600
    slope = float(conf["Slope_3_day_15_day_Threshold"])
    intercept = float(conf["Intercept_3_day_15_day_Threshold"])
    between = float(conf["Hours_Between_Storms"]) * 3600
    inches = rain_mm / 25.4
    p3 = _rolling(t, inches, recent)
    p15 = _rolling(t, inches, recent + ante) - p3
    full = t >= t[0] + recent + ante  # a full antecedent period on record
    over = full & (p3 >= intercept + slope * p15) & (p3 > 0)
    starts = np.zeros(t.size, dtype=bool)
    last_over = -np.inf
    for i in np.flatnonzero(over):
        if t[i] - last_over > between:
            starts[i] = True
        last_over = t[i]
    return starts


def usgs(data: Path) -> RealSet:
    zone = ZoneInfo("Etc/GMT+8")  # the loggers keep Pacific standard time (no DST repeat)
    folder = data / "usgs_mukilteo"
    runs = []
    for station in ("MVD116", "WatertonA", "MLP", "MWWD"):
        t, mm = _rain(folder / f"wa{station}_rain.txt", zone)
        names = [f"{station}_rain_1h", f"{station}_rain_24h"]
        x = np.column_stack([_rolling(t, mm, 3600.0), _rolling(t, mm, DAY)])
        runs.append(Run(f"{station} rain", t, names, x,
                        {names[0]: "rainfall_1h", names[1]: "rainfall_24h"},
                        changepoint=exceedance_starts(t, mm, folder / "thresh_in.txt"),
                        nab_points=names, nab_window_s=RAIN_NAB_WINDOW_S))
    t, _, x, _ = read_export(folder / "waMVD116_14d.txt", tz=zone)
    tb, _, xb, _ = read_export(folder / "waWatertonA_14d.txt", columns=["5"], tz=zone)
    baro = np.full(t.size, np.nan)  # the barometer is on the WatertonA logger: join on time
    at = np.searchsorted(tb, t).clip(0, tb.size - 1)
    hit = tb[at] == t
    baro[hit] = (xb[at[hit], 0] * 0.240 + 500.0) * 0.1
    channels: dict[str, tuple[str, np.ndarray]] = {"WatertonA_baro": ("barometric_pressure",
                                                                      baro)}
    for gauge, (rc, oc) in {1: (17, 18), 2: (19, 20)}.items():
        reading, ohms = x[:, rc - 1], x[:, oc - 1]  # x's column k-1 is the file's column k
        kpa, level = vw_pore_pressure(reading, ohms, baro, gauge)
        channels[f"MVD116_VW{gauge}_raw"] = ("generic", reading)
        channels[f"MVD116_VW{gauge}_kPa"] = ("pore_pressure", kpa)
        channels[f"MVD116_VW{gauge}_head"] = ("piezometric_head", level)
    runs.append(Run("MVD116 VW", t, list(channels),
                    np.column_stack([v for _, v in channels.values()]),
                    {k: q for k, (q, _) in channels.items()}))
    return RealSet("usgs", "USGS Mukilteo: 15-min rain (4 stations), raw VW piezometers "
                   "(14 days)", zone.key, runs, _windows("usgs", zone))


def skab(data: Path) -> RealSet:
    runs = []
    for folder in ("valve1", "valve2", "other"):
        for path in sorted((data / "skab" / folder).glob("*.csv"), key=lambda p: int(p.stem)):
            t, names, x, _ = read_export(path, tz="UTC")
            values, label, cp = x[:, :8], x[:, 8] > 0, x[:, 9] > 0
            cols = [n.replace(" ", "_") for n in names[:8]]
            start, end = t[np.argmax(label)], t[len(label) - 1 - np.argmax(label[::-1])]
            runs.append(Run(f"{folder}/{path.stem}", t, cols, values,
                            dict.fromkeys(cols, "generic"), changepoint=cp, nab_points=cols,
                            nab_window_s=SKAB_NAB_WINDOW_S,
                            windows=[("anomaly", "event", ".", start, end, 0.0,
                                      SKAB_NAB_WINDOW_S)]))
    return RealSet("skab", "SKAB pump rig, 1 s, 34 labelled experiments", "UTC", runs, [])


LOADERS = {"qili": qili, "tailings_pond": tailings_pond, "ridgecrest": ridgecrest,
           "usgs": usgs, "skab": skab}
