"""What every physical signal model shares: the model type, its parameter errors, the fixed grid
it is solved on, and the few operations several models use (a first-order lag, a daily rhythm,
the integral of a piecewise-linear rate).

A model is solved once at load on a fixed grid and then interpolated, so its answer never depends
on the order or number of calls: served and generated values agree
(`firmware_sim.physics`, `firmware_sim.process_physics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["HOUR", "DAY", "ModelError", "Model", "number", "grid", "lagged", "lag_series",
           "daily", "cumulative"]

HOUR = 3600.0
DAY = 86400.0


class ModelError(ValueError):
    """A model's parameters are wrong; the message names the parameter."""


@dataclass(frozen=True)
class Model:
    """A true signal given on a fixed grid (exact at the grid nodes, linear between them)."""

    name: str
    times: np.ndarray
    values: np.ndarray
    params: dict = field(default_factory=dict)

    def truth(self, tau: np.ndarray | float) -> np.ndarray:
        return np.interp(tau, self.times, self.values)


def number(params: Mapping, key: str, default: float | None = None) -> float:
    """Parameter `key` as a float (ModelError naming it when missing or not a number)."""
    if key not in params:
        if default is None:
            raise ModelError(f"{key}: missing")
        return float(default)
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelError(f"{key}: expected a number, got {value!r}")
    return float(value)


def grid(duration: float, step: float) -> np.ndarray:
    """Nodes every `step` s from 0 to the first node at or past `duration`."""
    n = int(np.ceil(duration / step))
    return np.linspace(0.0, n * step, n + 1)


def lag_series(times: np.ndarray, x: np.ndarray, lag: float) -> np.ndarray:
    """First-order lag (time constant `lag` s) of a piecewise-linear input given at equally
    spaced `times`, held at its first value before them; exact at the nodes."""
    if lag <= 0 or x.size < 2:
        return x.copy()
    step = float(times[1] - times[0])
    a = np.exp(-step / lag)
    ramp = 1.0 - lag / step * (1.0 - a)  # response after one step to a unit ramp over it
    y = np.empty_like(x)
    y[0] = x[0]
    for i in range(1, x.size):
        y[i] = a * y[i - 1] + (1.0 - a) * x[i - 1] + ramp * (x[i] - x[i - 1])
    return y


def lagged(source: Model, lag: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """First-order lag of `source` (time constant `lag` s) on a 60 s grid."""
    nodes = grid(duration, 60.0)
    return nodes, lag_series(nodes, source.truth(nodes), lag)


def daily(nodes: np.ndarray, p: Mapping) -> np.ndarray:
    """Mean, trend per day and a daily cosine peaking at `daily_peak_hour` (local scenario time:
    tau = 0 is the scenario's epoch)."""
    mean = number(p, "mean")
    trend = number(p, "trend_per_day", 0.0)
    amp = number(p, "daily_amplitude", 0.0)
    peak = number(p, "daily_peak_hour", 14.0)
    return mean + trend * nodes / DAY + amp * np.cos(2 * np.pi * (nodes / HOUR - peak) / 24.0)


def cumulative(tau: np.ndarray, rate_t: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """The exact integral since tau = 0 of a piecewise-linear rate given per hour (mm/h of rain,
    m³/h of flow): depth in mm, volume in m³."""
    knots = np.union1d(np.union1d(rate_t, tau), [0.0])
    per_s = np.interp(knots, rate_t, rate) / HOUR
    total = np.concatenate([[0.0], np.cumsum(0.5 * (per_s[1:] + per_s[:-1]) * np.diff(knots))])
    total -= np.interp(0.0, knots, total)
    return np.interp(tau, knots, total)
