"""Which detectors a point gets by default, by the quantity it measures (issue 5, domain.md R1).

The quantity names are those of gateway/config/quantities.py; this module does not import the
gateway (detectors stay a leaf package), so tests/unit/test_det_registry.py checks that the two
lists agree. A point's config may override its set; these are the defaults.

>>> detectors_for("gnss_disp")
('threshold', 'rate', 'tangent_angle', 'inverse_velocity', 'stuck')
>>> rate_direction("phreatic_depth"), aggregation_enabled("phreatic_depth"), aggregation_enabled("ch4")
(-1, True, False)
"""

from __future__ import annotations

import importlib

__all__ = ["DEFAULTS", "ALWAYS", "DETECTORS", "TAILINGS_ITEMS", "detectors_for", "rate_direction",
           "aggregation_enabled", "detector_class"]

_LEVELS = ("threshold", "rate")  # a level that must not be crossed, and must not rise too fast
_DISPLACEMENT = ("threshold", "rate", "tangent_angle", "inverse_velocity")  # R5
_GAS = ("threshold", "spike")  # gas bursts and sensor glitches are short: Hampel sees them

DEFAULTS: dict[str, tuple[str, ...]] = {
    "water_level": _LEVELS,
    "freeboard": _LEVELS,
    "dry_beach_length": _LEVELS,
    "beach_crest_elev": ("threshold",),  # moves by construction steps, not by a rate
    "phreatic_depth": _LEVELS,
    "piezometric_head": _LEVELS,
    "pore_pressure": _LEVELS,
    "gnss_disp": _DISPLACEMENT,
    "inclinometer_disp": _DISPLACEMENT,
    "rainfall_1h": ("threshold",),  # already a windowed sum
    "rainfall_24h": ("threshold",),
    "seepage_flow": ("threshold", "rate", "cusum"),  # a sudden step in seepage is a warning sign
    "turbidity": ("threshold", "spike"),
    "ch4": _GAS,
    "co": _GAS,
    "h2s": _GAS,
    "no2": _GAS,
    "o2": _GAS,
    "temperature": ("threshold", "cusum"),
    "barometric_pressure": ("threshold",),  # an input of VW corrections: stuck matters most
    "generic": ("generic",),
}
ALWAYS = ("stuck",)  # every point: stuck, flat-lined and implausible values are sensor faults

# which change of the value is worse, for the rate detector (+1 rise, -1 fall): the quantities'
# own directions, where lower is worse a fall is (a phreatic line rising = its depth falling)
_FALLING_IS_WORSE = frozenset({"freeboard", "dry_beach_length", "beach_crest_elev",
                               "phreatic_depth"})

# the tailings-pond items of GB 39496-2020 §5.5.2: the §5.5.4 aggregation is on for them only
TAILINGS_ITEMS = frozenset({"water_level", "freeboard", "dry_beach_length", "beach_crest_elev",
                            "phreatic_depth", "piezometric_head", "pore_pressure", "gnss_disp",
                            "inclinometer_disp", "rainfall_1h", "rainfall_24h", "seepage_flow",
                            "turbidity"})

DETECTORS: dict[str, str] = {
    "threshold": "detectors.threshold:ThresholdDetector",
    "rate": "detectors.rate:RateDetector",
    "tangent_angle": "detectors.tangent_angle:TangentAngleDetector",
    "inverse_velocity": "detectors.inverse_velocity:InverseVelocityDetector",
    "spike": "detectors.spike:SpikeDetector",
    "cusum": "detectors.cusum:CusumDetector",
    "stuck": "detectors.stuck:StuckDetector",
    "generic": "detectors.generic:GenericDetector",
    "river_hst": "detectors.river_adapter:RiverHalfSpaceTrees",
}


def _known(quantity: str) -> None:
    if quantity not in DEFAULTS:
        raise KeyError(f"unknown quantity {quantity!r}; known: {', '.join(sorted(DEFAULTS))}")


def detectors_for(quantity: str) -> tuple[str, ...]:
    """The default detector names of a point measuring `quantity` (KeyError if unknown)."""
    _known(quantity)
    return DEFAULTS[quantity] + ALWAYS


def rate_direction(quantity: str) -> int:
    """+1 when a rising value is the worse change, -1 when a falling one is."""
    _known(quantity)
    return -1 if quantity in _FALLING_IS_WORSE else 1


def aggregation_enabled(quantity: str) -> bool:
    """Whether the GB 39496-2020 §5.5.4 item aggregation applies by default (tailings items)."""
    _known(quantity)
    return quantity in TAILINGS_ITEMS


def detector_class(name: str) -> type:
    """The class of a detector name, imported on demand (river only when asked for)."""
    if name not in DETECTORS:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}")
    module, cls = DETECTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)
