"""Ground-truth labels of a scenario: when its true signals are beyond a threshold, and its faults.

Labels are declared by the scenario, never measured by the gateway: safety labels come from the
noise-free truth of each signal and the thresholds of the scenario's site config (read here from
the TOML, independent of the gateway's detectors), fault labels from the `[[faults]]` schedule,
and a creep scenario's failure time from its declared `t_f`.

One JSON object per line:
`{"point", "start", "end", "expected_level", "kind", "fault_kind"}` with `start`/`end` in epoch
seconds (float, UTC; `end` exclusive, equal to the scenario's end when still beyond it).
`kind` is "safety" (`expected_level` blue/yellow/orange/red: the truth is at or beyond that
level's threshold throughout), "fault" (`fault_kind` the scheduled kind, `expected_level` null;
`point` is the device name for communication faults), "failure" (`start` = `end` = t_f) or
"precursor" (a creep signal's accelerating stage, from its declared `t_acc` to t_f: the time in
which a displacement criterion should warn, before any threshold is crossed).
Restore levels and hold times are not applied: a label is the physical interval, the detector's
debounce is judged against it by whoever scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_sim.scenario import Scenario, load_scenario
from gateway.toml_text import read_toml

__all__ = ["LEVELS", "PointSpec", "site_points", "safety_labels", "fault_labels",
           "failure_labels", "scenario_labels", "write_labels"]

LEVELS = ("blue", "yellow", "orange", "red")
# quantities where a lower value is worse, when a point gives no direction
_LOWER_IS_WORSE = {"phreatic_depth", "beach_length", "dry_beach_length", "freeboard",
                   "beach_crest_elev", "oxygen", "o2", "cooling_water_flow"}


@dataclass(frozen=True)
class PointSpec:
    """What labels and exports need of one site-config point."""

    name: str
    device: str | None
    quantity: str
    unit: str
    # (side, {level: threshold}) per side: side "upper" (at or above is worse) or "lower"
    sides: tuple[tuple[str, dict[str, float]], ...]


def site_points(site_config: Path) -> dict[str, PointSpec]:
    """The `[[points]]` of a site config TOML, by name."""
    doc, _ = read_toml(site_config)
    points: dict[str, PointSpec] = {}
    for p in doc.get("points", []):
        quantity = str(p.get("quantity", ""))
        th = p.get("thresholds") or {}
        default = "lower" if quantity.lower() in _LOWER_IS_WORSE else "upper"
        direction = th.get("direction", default)
        sides = []
        for side in (("upper", "lower") if direction == "both" else (direction,)):
            table = th.get(side, {}) if direction == "both" else th
            levels = {lv: float(table[lv]) for lv in LEVELS if lv in table}
            if levels:
                sides.append((side, levels))
        points[str(p["name"])] = PointSpec(str(p["name"]), p.get("device"), quantity,
                                           str(p.get("unit", "")), tuple(sides))
    return points


def _intervals(beyond: np.ndarray) -> list[tuple[int, int]]:
    """Index runs [i, j) where `beyond` is true."""
    edges = np.diff(np.concatenate([[0], beyond.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _refine(f, lo: float, hi: float, level: float, side: str) -> float:
    """The time in [lo, hi] where the truth reaches `level` (bisection: the truth is continuous,
    piecewise linear between its grid nodes)."""
    sign = 1.0 if side == "upper" else -1.0
    lo_in = sign * (float(f(lo)) - level) >= 0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (sign * (float(f(mid)) - level) >= 0) == lo_in:
            lo = mid
        else:
            hi = mid
    return hi


def safety_labels(scenario: Scenario, points: dict[str, PointSpec]) -> list[dict]:
    """Intervals where a signal's truth is at or beyond each threshold level of its point."""
    labels = []
    for key, sig in scenario.signals.items():
        spec = points.get(key)
        if spec is None:
            continue
        # candidate grid: the signal's own nodes (where its slope may change) and a 1 s lattice
        # floor so that no excursion shorter than the tick is missed between nodes
        grid = np.union1d(sig.times[(sig.times >= 0) & (sig.times <= scenario.duration)],
                          np.arange(0.0, scenario.duration, min(scenario.tick, 60.0)))
        grid = np.union1d(grid, [scenario.duration])
        truth = sig.truth(grid)
        for side, levels in spec.sides:
            for level_name, level in levels.items():
                beyond = truth >= level if side == "upper" else truth <= level
                for i, j in _intervals(beyond):
                    start = grid[i] if i == 0 else _refine(sig.truth, grid[i - 1], grid[i],
                                                          level, side)
                    end = scenario.duration if j == grid.size else _refine(
                        sig.truth, grid[j - 1], grid[j], level, side)
                    labels.append({"point": key, "start": scenario.epoch + float(start),
                                   "end": scenario.epoch + float(end),
                                   "expected_level": level_name, "kind": "safety",
                                   "fault_kind": None})
    return labels


def fault_labels(scenario: Scenario) -> list[dict]:
    """One label per scheduled fault, exactly its window."""
    return [{"point": f.point or f.device, "start": scenario.epoch + f.start,
             "end": scenario.epoch + min(f.end, scenario.duration), "expected_level": None,
             "kind": "fault", "fault_kind": f.kind} for f in scenario.faults]


def failure_labels(scenario: Scenario) -> list[dict]:
    """The declared failure time of every creep signal, and its accelerating stage."""
    out = []
    for key, sig in scenario.signals.items():
        if sig.model == "creep":
            t_f = scenario.epoch + float(sig.params["t_f_s"])
            out.append({"point": key, "start": t_f, "end": t_f, "expected_level": "red",
                        "kind": "failure", "fault_kind": None})
            if "t_acc_s" in sig.params:
                out.append({"point": key, "start": scenario.epoch + float(sig.params["t_acc_s"]),
                            "end": t_f, "expected_level": None, "kind": "precursor",
                            "fault_kind": None})
    return out


def scenario_labels(scenario: Scenario | str | Path) -> list[dict]:
    """All labels of a scenario, ordered by start time."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    points = site_points(scenario.site_config)
    labels = safety_labels(scenario, points) + fault_labels(scenario) + failure_labels(scenario)
    return sorted(labels, key=lambda lb: (lb["start"], lb["point"], lb["kind"]))


def write_labels(scenario_name: str, out: str | None = None) -> int:
    """`firmware-sim labels`: JSON lines to `out` (or stdout)."""
    lines = "".join(json.dumps(lb) + "\n" for lb in scenario_labels(scenario_name))
    if out:
        Path(out).write_text(lines, encoding="utf-8")
    else:
        print(lines, end="")
    return 0
