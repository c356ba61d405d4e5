"""Which detectors a point gets by default, by the quantity it measures (docs/requirements.md R1).

The quantity names are those of gateway/config/quantities.py; this module does not import the
gateway (detectors stay a leaf package), so tests/unit/test_det_registry.py checks that the two
lists agree. A point's config may override its set; these are the defaults.

Every default set detects without site thresholds too (a new site rarely has them on day one):
the rate detector learns its own levels from the point's history, the step detector flags an
abrupt new level, the tangent angle and inverse velocity learn their reference velocity, and
`stuck` judges flat lines by the quantity's physics and the point's own habits.

>>> detectors_for("gnss_disp")
('threshold', 'rate', 'tangent_angle', 'inverse_velocity', 'step', 'stuck')
>>> rate_direction("phreatic_depth"), rate_direction("gnss_disp"), aggregation_enabled("ch4")
(-1, 2, False)
>>> stuck_min_s("water_level") / 3600, stuck_min_s("rainfall_24h")
(48.0, inf)
>>> detectors_for("cooling_water_flow"), rate_direction("cooling_water_flow")
(('threshold', 'step', 'stuck'), -1)
>>> stuck_min_s("nh3"), stuck_min_s("tank_level") / 86400
(inf, 2.0)
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

__all__ = ["DEFAULTS", "ALWAYS", "DETECTORS", "PER_POINT", "TAILINGS_ITEMS", "Kind", "detectors_for",
           "rate_direction", "stuck_min_s", "jump_checks", "aggregation_enabled", "detector_class",
           "params_class"]

# a level that must not be crossed, must not rise too fast, and must not jump
_LEVELS = ("threshold", "rate", "step")
# a piezometer's level: a jump in it is a sensor event (a logger reset, a zero that drifted
# back), not a movement of the phreatic line, which rises with the water, not in a minute
_PIEZOMETRIC = ("threshold", "rate")
_DISPLACEMENT = ("threshold", "rate", "tangent_angle", "inverse_velocity", "step")  # R5
# a gas point: its levels. A one-sample glitch is the stuck detector's spike (confirmed by the
# sample after it); a Hampel filter as a quality verdict called the front of every real plume
# and ordinary noise a sensor fault, so it is no default (a point can still run `spike`)
_GAS = ("threshold",)
# a storage tank's level, pressure and temperature move with transfers, the sun and the process:
# how fast a tank fills is an operation, not an anomaly; the overfill is a level
# (docs/chemical_metallurgy.md#storage-tanks)
_TANK = ("threshold",)

DEFAULTS: dict[str, tuple[str, ...]] = {
    "water_level": _LEVELS,
    "freeboard": _LEVELS,
    "dry_beach_length": _LEVELS,
    "beach_crest_elev": ("threshold",),  # moves by construction steps, not by a rate
    "phreatic_depth": _PIEZOMETRIC,
    "piezometric_head": _PIEZOMETRIC,
    "pore_pressure": _PIEZOMETRIC,
    "gnss_disp": _DISPLACEMENT,
    "inclinometer_disp": _DISPLACEMENT,
    "rainfall_1h": ("threshold",),  # already a windowed sum
    "rainfall_24h": ("threshold",),
    # a sudden step in seepage is a warning sign: a safety event of its own (step), not a
    # sensor-quality verdict (CUSUM calls every rain-driven shift of a real seepage a fault)
    "seepage_flow": ("threshold", "rate", "step"),
    "turbidity": ("threshold",),
    "ch4": _GAS,
    "co": _GAS,
    "h2s": _GAS,
    "no2": _GAS,
    "o2": _GAS,
    "combustible_gas": _GAS,
    "nh3": _GAS,
    "cl2": _GAS,
    "tank_level": _TANK,
    "tank_temperature": _TANK,
    "tank_pressure": _TANK,
    # a cooling circuit that loses its pump or bursts a pipe loses its flow in a minute: a step
    # down; the outlet water then warms faster than it ever does by day
    # (docs/chemical_metallurgy.md#furnace-cooling-water)
    "cooling_water_flow": ("threshold", "step"),
    "cooling_water_temp": ("threshold", "rate"),
    "cooling_flow_diff": ("threshold",),  # a difference of two noisy flows: its level only
    "temperature": ("threshold",),  # a daily cycle is no level shift: CUSUM would cry fault
    "barometric_pressure": ("threshold",),  # an input of VW corrections: stuck matters most
    "generic": ("generic",),
}
ALWAYS = ("stuck",)  # every point: stuck, flat-lined and implausible values are sensor faults

# which change of the value is worse, for the rate detector (+1 rise, -1 fall): the quantities'
# own directions, where lower is worse a fall is (a phreatic line rising = its depth falling)
_FALLING_IS_WORSE = frozenset({"freeboard", "dry_beach_length", "beach_crest_elev",
                               "phreatic_depth", "cooling_water_flow"})
# a displacement channel is often one axis of a station (GNSS north, east): it moves either way
_EITHER_IS_WORSE = frozenset({"gnss_disp", "inclinometer_disp"})

_HOUR = 3600.0
# how long a value may hold still before it is stuck, by what the quantity physically does (on
# top of the device periods and the point's own learned habits; detectors/stuck.py): a pond or
# a tank holds its level for a day and a level gauge reads in centimetres; a vibrating-wire
# piezometer, a GNSS solution or a barometer always moves in its last digits; rain gauges and
# gas heads in clean air read the same zero for weeks, so flatness says nothing about them
_STUCK_MIN_S: dict[str, float] = {
    "water_level": 48 * _HOUR, "freeboard": 48 * _HOUR, "dry_beach_length": 48 * _HOUR,
    "beach_crest_elev": 7 * 24 * _HOUR, "phreatic_depth": 12 * _HOUR,
    "piezometric_head": 12 * _HOUR, "pore_pressure": 12 * _HOUR, "seepage_flow": 12 * _HOUR,
    "turbidity": 12 * _HOUR, "rainfall_1h": float("inf"), "rainfall_24h": float("inf"),
    "ch4": float("inf"), "co": float("inf"), "h2s": float("inf"), "no2": float("inf"),
    "o2": 7 * 24 * _HOUR, "temperature": 6 * _HOUR,
    "combustible_gas": float("inf"), "nh3": float("inf"), "cl2": float("inf"),
    # a tank's level holds still for days between transfers (only the product's thermal
    # expansion moves it, millimetres a day); the product's temperature is a large mass that
    # drifts in tenths of a degree; a blanketed tank's regulator holds its pressure for a day
    "tank_level": 48 * _HOUR, "tank_temperature": 48 * _HOUR, "tank_pressure": 24 * _HOUR,
    # turbulent cooling water never reads the same flow twice for long; its temperature
    # follows the furnace and the day
    "cooling_water_flow": _HOUR, "cooling_water_temp": 6 * _HOUR, "cooling_flow_diff": _HOUR,
    # no physics known: a flat line shorter than an hour is noise (a 1-second flow read in
    # whole units holds for half a minute); GB 51108 gives a week to repair a fault
    "generic": _HOUR, "barometric_pressure": _HOUR,
}

# the tailings-pond items of GB 39496-2020 §5.5.2: the §5.5.4 aggregation is on for them only
TAILINGS_ITEMS = frozenset({"water_level", "freeboard", "dry_beach_length", "beach_crest_elev",
                            "phreatic_depth", "piezometric_head", "pore_pressure", "gnss_disp",
                            "inclinometer_disp", "rainfall_1h", "rainfall_24h", "seepage_flow",
                            "turbidity"})


class Kind(NamedTuple):
    """Where a detector lives: its module, its class and the class of its per-channel parameters
    (None: not a per-channel detector, so no point can run it in the live path)."""

    module: str
    detector: str
    params: str | None


# By name, imported on demand: `import detectors.registry` (the config loader's) stays free of
# numba and of the kernel modules until a site's detectors are built, and river is imported only
# by a site that asks for it.
DETECTORS: dict[str, Kind] = {
    "threshold": Kind("detectors.threshold", "ThresholdDetector", "ThresholdParams"),
    "rate": Kind("detectors.rate", "RateDetector", "RateParams"),
    "tangent_angle": Kind("detectors.tangent_angle", "TangentAngleDetector",
                          "TangentAngleParams"),
    "inverse_velocity": Kind("detectors.inverse_velocity", "InverseVelocityDetector",
                             "InverseVelocityParams"),
    "spike": Kind("detectors.spike", "SpikeDetector", "SpikeParams"),
    "cusum": Kind("detectors.cusum", "CusumDetector", "CusumParams"),
    "step": Kind("detectors.step", "StepDetector", "StepParams"),
    "stuck": Kind("detectors.stuck", "StuckDetector", "StuckParams"),
    "generic": Kind("detectors.generic", "GenericDetector", "GenericParams"),
    # one model over the site's whole vector (RiverParams is not per channel)
    "river_hst": Kind("detectors.river_adapter", "RiverHalfSpaceTrees", None),
}
# the detectors a point can run (its config's `detectors`, the live path, `minewatch compile`)
PER_POINT = frozenset(name for name, kind in DETECTORS.items() if kind.params is not None)


def _known(quantity: str) -> None:
    if quantity not in DEFAULTS:
        raise KeyError(f"unknown quantity {quantity!r}; known: {', '.join(sorted(DEFAULTS))}")


def detectors_for(quantity: str) -> tuple[str, ...]:
    """The default detector names of a point measuring `quantity` (KeyError if unknown)."""
    _known(quantity)
    return DEFAULTS[quantity] + ALWAYS


def rate_direction(quantity: str) -> int:
    """+1 when a rising value is the worse change, -1 when a falling one is, 2 either (the
    velocity detectors' `direction`)."""
    _known(quantity)
    if quantity in _EITHER_IS_WORSE:
        return 2
    return -1 if quantity in _FALLING_IS_WORSE else 1


# rain falls in bursts: a wet day among dry ones is no spike, a downpour no step
_NO_JUMPS = frozenset({"rainfall_1h", "rainfall_24h"})


def jump_checks(quantity: str) -> bool:
    """Whether spikes and steps mean anything for this quantity (`detectors.jumps`)."""
    _known(quantity)
    return quantity not in _NO_JUMPS


def stuck_min_s(quantity: str) -> float:
    """Seconds a value of this quantity may physically hold still (inf: flatness proves
    nothing; 0: no physical floor, the device periods decide)."""
    _known(quantity)
    return _STUCK_MIN_S.get(quantity, 0.0)


def aggregation_enabled(quantity: str) -> bool:
    """Whether the GB 39496-2020 §5.5.4 item aggregation applies by default (tailings items)."""
    _known(quantity)
    return quantity in TAILINGS_ITEMS


def _kind(name: str) -> Kind:
    if name not in DETECTORS:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[name]


def detector_class(name: str) -> type:
    """The class of a detector name, imported on demand (river only when asked for)."""
    kind = _kind(name)
    return getattr(importlib.import_module(kind.module), kind.detector)


def params_class(name: str) -> type:
    """The per-channel parameter class of a detector name (`defaults(n)`, `validate()`); a
    ValueError for a detector that does not run per point (river's model)."""
    kind = _kind(name)
    if kind.params is None:
        raise ValueError(f"detector {name!r} cannot run per point in the live path")
    return getattr(importlib.import_module(kind.module), kind.params)
