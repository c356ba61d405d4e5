"""The detector-parameter schema: which parameters each detector takes in a site config, of what
kind and shape, and how configured values are checked and written into a detector's parameter
arrays. The loader checks `[points.detector.<name>]` and `[detector_defaults.<quantity>.<name>]`
against it; the detect stage (`gateway/detect.py`) writes the values with it at run time.

The keys are the kernels' own parameter names (detectors/<name>.py documents them); the state
layout (window bucket counts, history lengths) is fixed per detector and not a per-point key.
Fields set elsewhere in the config (direction from the quantity, plausible range, the device
period) are not keys here.
"""

from __future__ import annotations

from typing import Any

from detectors.registry import PER_POINT, params_class

__all__ = ["LIVE_DETECTORS", "apply_detector_params", "detector_param_spec",
           "detector_params_problem"]

# per-point detectors of the live path (river's model spans a whole site, not a point)
LIVE_DETECTORS = PER_POINT
_FROM_ELSEWHERE = {"direction", "plausible_min", "plausible_max", "period_s"}


def detector_param_spec(detector: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Field → (kind, per-channel shape) of a detector's parameters: kind 'bool', 'int',
    'duration' (seconds or '6h'; fields ending in _s or _hold) or 'float'."""
    if detector == "threshold":
        return {}  # the point's `thresholds` table configures it
    spec = {}
    for name, arr in vars(params_class(detector).defaults(1)).items():
        if name in _FROM_ELSEWHERE:
            continue
        kind = ("bool" if arr.dtype == bool else "int" if arr.dtype.kind in "iu" else
                "duration" if name.endswith(("_s", "_hold")) else "float")
        spec[name] = (kind, arr.shape[1:])
    return spec


def detector_params_problem(detector: str, values: dict[str, Any]) -> str:
    """The detector's own validation of one channel with these values ('' when valid)."""
    params = params_class(detector).defaults(1)
    for key, value in values.items():
        try:
            apply_detector_params(params, 0, {key: value})
        except (OverflowError, ValueError, TypeError):
            # numpy refuses a value its array cannot hold (300 in an int8 grade)
            dtype = getattr(params, key).dtype
            return f"{key} {value!r} does not fit its {dtype} parameter"
    try:
        params.validate()
    except ValueError as exc:
        return str(exc)
    return ""


def apply_detector_params(params: Any, channel: int, values: dict[str, Any]) -> None:
    """Write configured values into one channel of a detector's parameter arrays."""
    for key, value in values.items():
        getattr(params, key)[channel] = value
