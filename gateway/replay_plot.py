"""`minewatch replay --plot`: the replayed series with grade bands and events (PNG)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from gateway.replay_input import ReplayError

_GRADE_COLOURS = {1: "#4a90d9", 2: "#f2c94c", 3: "#f2994a", 4: "#eb5757"}  # GB blue … red


def plot_replay(path: Path, t: np.ndarray, names: list[str], x: np.ndarray, grade: np.ndarray,
                events: list[dict], zone: ZoneInfo) -> None:
    """One panel per channel: the series, its grade as coloured bands, the events as lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # a gateway or CI box has no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReplayError("--plot needs matplotlib (pip install 'minewatch[plot]')") from None
    when = [datetime.fromtimestamp(v, zone) for v in t]
    c = len(names)
    fig, axes = plt.subplots(c, 1, figsize=(11, 2.2 * c + 0.6), sharex=True, squeeze=False)
    for k, (ax, name) in enumerate(zip(axes[:, 0], names, strict=True)):
        ax.plot(when, x[:, k], lw=0.8, color="black")
        g = grade[:, k]
        edges = np.flatnonzero(np.diff(g)) + 1  # runs of one grade become one band each
        for a, b in zip(np.r_[0, edges], np.r_[edges, len(g)], strict=True):
            if g[a] > 0:
                ax.axvspan(when[a], when[min(b, len(g) - 1)], color=_GRADE_COLOURS[int(g[a])],
                           alpha=0.3, lw=0)
        for ev in events:
            if ev.get("point") == name:
                at = datetime.fromtimestamp(ev["observed_at"] / 1000.0, zone)
                ax.axvline(at, color=_GRADE_COLOURS.get(_LEVEL.get(ev["level"], 0), "grey"),
                           lw=1.0, ls="--" if ev["state"] == "cleared" else "-")
        ax.set_ylabel(name)
    axes[0, 0].set_title(f"replay: grade bands (blue … red) and events ({len(events)})")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


_LEVEL = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
