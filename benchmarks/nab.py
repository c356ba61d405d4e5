"""NAB-style scoring of alarm onsets against labelled changepoints, shared by the SKAB and the
real-data benchmarks.

As done here (Lavin and Ahmad 2015, with a window of `window_s` to the right of each changepoint;
SKAB uses 60 s): an alarm onset is a detected changepoint. The first onset in a window scores
A_tp x sigmoid of its position (earlier is better: 2 / (1 + e^(5y)) - 1, y from -1 at the
window's start to 0 at its end); a window without one scores A_fn; every onset outside all
windows scores A_fp (flat: NAB proper weights a false positive by its distance after a window).
The sum is normalised to 100 for a perfect detector and 0 for one that never alarms. Profiles
(A_tp, A_fp, A_fn): standard (1, -0.11, -1), low-FP (1, -0.22, -1), low-FN (1, -0.11, -2).

`nab_sweep` applies NAB's own habit of choosing each profile's best threshold over a detector's
per-row score: the alarm is "score >= threshold" for every threshold of a grid.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NAB_PROFILES", "nab_counts", "nab_scores", "nab_sweep"]

NAB_PROFILES = {"standard": (1.0, -0.11, -1.0), "low_fp": (1.0, -0.22, -1.0),
                "low_fn": (1.0, -0.11, -2.0)}


def nab_counts(t: np.ndarray, changepoint: np.ndarray, alarm: np.ndarray,
               window_s: float = 60.0) -> dict:
    """Per series: the sigmoid weights of the windows' first onsets (NaN: missed) and the number
    of onsets outside every window; the profiles' weights are applied in `nab_scores`."""
    onsets = t[alarm & ~np.r_[False, alarm[:-1]]]
    starts = t[changepoint]
    in_any = np.zeros(onsets.size, dtype=bool)
    weights = []
    for start in starts:
        inside = (onsets >= start) & (onsets <= start + window_s)
        in_any |= inside
        if inside.any():
            y = (onsets[inside][0] - (start + window_s)) / window_s  # -1 .. 0
            weights.append(2.0 / (1.0 + np.exp(5.0 * y)) - 1.0)
        else:
            weights.append(np.nan)
    return {"window_weights": weights, "outside": int((~in_any).sum())}


def nab_scores(files: list[dict]) -> dict[str, float]:
    """NAB-style scores (0 = never alarms, 100 = perfect) of the series' `nab_counts`."""
    out = {}
    windows = sum(len(f["window_weights"]) for f in files)
    for name, (a_tp, a_fp, a_fn) in NAB_PROFILES.items():
        raw = sum(a_tp * w if np.isfinite(w) else a_fn
                  for f in files for w in f["window_weights"])
        raw += a_fp * sum(f["outside"] for f in files)
        null, perfect = a_fn * windows, a_tp * windows
        out[name] = round(100.0 * (raw - null) / (perfect - null), 2) if windows else 0.0
    return out


def nab_sweep(series: list[tuple[np.ndarray, np.ndarray, np.ndarray]], window_s: float,
              steps: int = 60) -> dict[str, dict]:
    """Each profile's best score over thresholds of the per-row scores, with that threshold.

    `series`: (t, changepoint, score) per series, score float[m] (NaN = no score). The grid is
    the scores' quantiles from the median up, plus one above the largest (never alarms, so a
    detector is never scored below 0 by the choice of threshold)."""
    pooled = np.concatenate([s[np.isfinite(s)] for _, _, s in series] or [np.zeros(0)])
    if pooled.size == 0:
        grid = np.array([np.inf])
    else:
        grid = np.unique(np.quantile(pooled, np.linspace(0.5, 1.0, steps)))
        grid = np.r_[grid[grid > 0] if (grid > 0).any() else grid, np.nextafter(pooled.max(),
                                                                                 np.inf)]
    best = {name: {"score": -np.inf, "threshold": None} for name in NAB_PROFILES}
    for threshold in grid:
        counts = [nab_counts(t, cp, np.nan_to_num(s, nan=-np.inf) >= threshold, window_s)
                  for t, cp, s in series]
        for name, value in nab_scores(counts).items():
            if value > best[name]["score"]:
                best[name] = {"score": value, "threshold": float(threshold)}
    return best
