"""Offline export of a scenario: the values the simulated sensors would report, as a CSV file.

`firmware-sim generate --scenario S --period 10s --out data.csv [--start T] [--end T]` writes a
`timestamp` column (ISO 8601 in UTC with its offset, `+00:00`, milliseconds) and one
column per point of the scenario's site config that the scenario drives. A cell is
`Scenario.value(point, t)` (truth + noise + value faults, the same numbers the live simulator
serves) or empty while a communication fault of the point's device is active (the poll would have
failed; `slow` replies still arrive, so they keep their value).
The sidecar `<out>.meta.json` gives the scenario, the site config and each column's quantity and
unit from the site config.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from firmware_sim.faults import COMM_FAULTS, FLAG_FAULTS
from firmware_sim.labels import site_points
from firmware_sim.scenario import Scenario, _seconds, load_scenario

__all__ = ["sample_times", "generate_table", "write_csv"]

# faults after which no good value arrives: no reply, or the device flags its reading invalid
_LOST = tuple(k for k in COMM_FAULTS if k != "slow") + FLAG_FAULTS


def _time(text: str | None, default: float, epoch: float) -> float:
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        return epoch + _seconds(text, "--start/--end")  # '36h' from the scenario's start


def sample_times(scenario: Scenario, period: float, start: float | None = None,
                 end: float | None = None) -> np.ndarray:
    """Epoch times from `start` (default: the epoch) up to but excluding `end` (default: the
    scenario's end), every `period` s."""
    t0 = scenario.epoch if start is None else start
    t1 = scenario.epoch + scenario.duration if end is None else end
    n = int(np.floor((t1 - t0) / period - 1e-9)) + 1
    return t0 + period * np.arange(max(n, 0), dtype=np.float64)


def generate_table(scenario: Scenario, times: np.ndarray) -> dict[str, np.ndarray]:
    """Column → values at `times` (NaN where a communication fault loses the reading)."""
    points = site_points(scenario.site_config)
    columns: dict[str, np.ndarray] = {}
    tau = scenario.ticks(times) * scenario.tick
    for name, spec in points.items():
        if name not in scenario.signals:
            continue
        values = np.array(scenario.value(name, times), dtype=np.float64)
        for fault in scenario.faults:
            if fault.kind in _LOST and fault.device == spec.device:
                values[(tau >= fault.start) & (tau < fault.end)] = np.nan
        columns[name] = values
    return columns


def write_csv(scenario_name: str, out: str, period: str = "10s", start: str | None = None,
              end: str | None = None) -> int:
    """`firmware-sim generate`: the CSV and its `<out>.meta.json` sidecar."""
    scenario = load_scenario(scenario_name)
    step = _seconds(period, "--period")
    times = sample_times(scenario, step, _time(start, scenario.epoch, scenario.epoch),
                         _time(end, scenario.epoch + scenario.duration, scenario.epoch))
    columns = generate_table(scenario, times)
    path = Path(out)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", *columns])
        cols = list(columns.values())
        for i, t in enumerate(times):
            stamp = datetime.fromtimestamp(float(t), UTC).isoformat(timespec="milliseconds")
            # repr keeps every bit of the float64, so the file reproduces Scenario.value exactly
            writer.writerow([stamp, *("" if np.isnan(c[i]) else repr(float(c[i])) for c in cols)])
    points = site_points(scenario.site_config)
    meta = {"scenario": scenario.name, "site_config": str(scenario.site_config),
            "period_s": step, "timestamp": "ISO 8601, UTC (+00:00)",
            "columns": {name: {"quantity": points[name].quantity, "unit": points[name].unit,
                               "device": points[name].device} for name in columns}}
    Path(f"{out}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return 0
