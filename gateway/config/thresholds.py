"""The `thresholds` table of a point: its direction (upper, lower or both), the four warning
levels of each side in order, their restore levels (given, or a deadband of a few percent that
never crosses a lower level), and the debounce settings of raising and clearing."""

from __future__ import annotations

import math

from gateway.config.model import LEVELS, LevelSet, Thresholds
from gateway.config.reader import Reader

__all__ = ["build_thresholds"]

_THRESHOLD_KEYS = {"direction", *LEVELS, "restore", "deadband", "debounce", "hold",
                   "clear_samples", "clear_hold", "red_immediate", "upper", "lower"}


def _level_set(t: dict, path: str, r: Reader, side: str, deadband: float | None) -> LevelSet | None:
    values = [r.get(t, lv, path, float, math.nan) for lv in LEVELS]
    if all(math.isnan(v) for v in values):
        r.problem(path, f"no {side} threshold set", "set at least one of blue, yellow, orange, red")
        return None
    set_levels = [(lv, v) for lv, v in zip(LEVELS, values, strict=True) if not math.isnan(v)]
    for (la, va), (lb, vb) in zip(set_levels, set_levels[1:], strict=False):
        bad = vb < va if side == "upper" else vb > va
        if bad:
            order = "blue <= yellow <= orange <= red" if side == "upper" else \
                "blue >= yellow >= orange >= red"
            word = "higher" if side == "upper" else "lower"
            r.problem(f"{path}.{lb}", f"{lb} = {vb:g} is out of order against {la} = {va:g} "
                      f"for direction '{side}'",
                      f"{word} values are worse here, so {order}")
    gaps = [abs(b - a) for (_, a), (_, b) in zip(set_levels, set_levels[1:], strict=False) if b != a]
    restore_doc = r.table(t, "restore", f"{path}.restore")
    r.known(restore_doc, set(LEVELS), f"{path}.restore")
    restore: list[float] = []
    for lv, v in zip(LEVELS, values, strict=True):
        given = r.get(restore_doc, lv, f"{path}.restore", float, None)
        if math.isnan(v):
            if given is not None:
                r.problem(f"{path}.restore.{lv}", f"restore level given but no {lv} threshold")
            restore.append(math.nan)
            continue
        if given is None:
            # docs/requirements.md R4: without a restore level, a deadband of a few percent applies;
            # capped by a quarter of the smallest gap between levels, so a restore never crosses a
            # lower level (2 % of an elevation such as 1256 m would be 25 m).
            band = deadband if deadband is not None else 0.02 * abs(v)
            if gaps:
                band = min(band, 0.25 * min(gaps))
            if band <= 0:
                band = 1e-9
            given = v - band if side == "upper" else v + band
        elif (side == "upper" and given >= v) or (side == "lower" and given <= v):
            r.problem(f"{path}.restore.{lv}", f"restore {given:g} must be on the safe side of the "
                      f"{lv} threshold {v:g}",
                      "below the threshold for 'upper', above it for 'lower'")
        restore.append(given)
    return LevelSet(tuple(values), tuple(restore))  # type: ignore[arg-type]


def build_thresholds(t: dict, path: str, r: Reader, direction_default: str) -> Thresholds | None:
    r.known(t, _THRESHOLD_KEYS, path)
    direction = r.get(t, "direction", path, str, direction_default)
    if direction not in ("upper", "lower", "both"):
        r.problem(f"{path}.direction", f"unknown direction {direction!r}", "upper, lower or both")
        return None
    deadband = r.get(t, "deadband", path, float, None)
    if deadband is not None and deadband < 0:
        r.problem(f"{path}.deadband", "must not be negative")
    upper = lower = None
    if direction == "both":
        for lv in LEVELS:
            if lv in t:
                r.problem(f"{path}.{lv}", "with direction 'both' the levels go in "
                          "[thresholds.upper] and [thresholds.lower]")
        upper = _level_set(r.table(t, "upper", f"{path}.upper", True), f"{path}.upper", r,
                           "upper", deadband)
        lower = _level_set(r.table(t, "lower", f"{path}.lower", True), f"{path}.lower", r,
                           "lower", deadband)
        for sub, name in ((t.get("upper", {}), "upper"), (t.get("lower", {}), "lower")):
            if isinstance(sub, dict):
                r.known(sub, {*LEVELS, "restore"}, f"{path}.{name}")
    else:
        if "upper" in t or "lower" in t:
            r.problem(path, f"sub-tables upper/lower are only for direction 'both' (this point is "
                      f"'{direction}')")
        levels = _level_set(t, path, r, direction, deadband)
        if direction == "upper":
            upper = levels
        else:
            lower = levels
    samples = r.get(t, "debounce", path, int, 3)
    clear_samples = r.get(t, "clear_samples", path, int, 3)
    if samples < 1:
        r.problem(f"{path}.debounce", "needs at least 1 sample")
    if clear_samples < 1:
        r.problem(f"{path}.clear_samples", "needs at least 1 sample")
    return Thresholds(
        direction=direction, upper=upper, lower=lower,
        raise_samples=max(1, samples), raise_hold=r.duration(t, "hold", path, 0.0) or 0.0,
        clear_samples=max(1, clear_samples),
        clear_hold=r.duration(t, "clear_hold", path, 0.0) or 0.0,
        red_immediate=r.get(t, "red_immediate", path, bool, True),
    )
