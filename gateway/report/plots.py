"""The monthly report's plots: one per point, a PNG embedded in the HTML as a data URI.

Each shows the 5-minute means with the min–max band, the month's trend, the point's grade bands
(blue, yellow, orange, red zones from its thresholds, on the side that is worse), the episodes of
its alerts (shaded in their highest colour) and faults (a grey strip along the bottom), and the
manual readings as black diamonds beside the automatic line. The y range covers the data and the
nearest level, so a quiet month still shows how far the point stayed from blue.

This is the only module that imports matplotlib (inside the function: importing it writes font
caches, and the daemon never draws). Labels are Chinese when a CJK font is installed, also one
installed after matplotlib built its font cache, else English (the page around them is in the
chosen language either way).
"""

from __future__ import annotations

import base64
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["point_plot", "BAND_COLOURS"]

BAND_COLOURS = {"blue": "#2f6fdf", "yellow": "#e8c400", "orange": "#f08c00", "red": "#d62828"}
_LABELS = {"mean": ("5分钟均值", "5-min mean"), "range": ("最小–最大", "min–max"),
           "trend": ("趋势", "trend"), "manual": ("人工读数", "manual reading"),
           "fault": ("故障", "fault")}
_CJK = ("Noto Sans CJK", "Noto Sans SC", "WenQuanYi", "Source Han Sans", "SimHei",
        "Microsoft YaHei", "PingFang")


def _cjk_font(font_manager) -> str | None:
    """The family of an installed CJK font, or None. matplotlib lists the fonts it found when it
    first built its cache and never looks again, so a font installed since (the README's advice
    to a site) is found by reading the system's font files that the cache does not know."""
    manager = font_manager.fontManager
    for f in manager.ttflist:
        if any(name in f.name for name in _CJK):
            return f.name
    known = {f.fname for f in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path in known:
            continue
        try:
            manager.addfont(path)
        except (OSError, RuntimeError, ValueError):
            continue  # a file FreeType cannot read is no font for us
    for f in manager.ttflist:
        if f.fname not in known and any(name in f.name for name in _CJK):
            return f.name
    return None


def _bands(ax, thresholds: dict | None, lo: float, hi: float) -> tuple[float, float]:
    """Draw the grade zones; returns the y range widened to the nearest level."""
    if not thresholds:
        return lo, hi
    names = ("blue", "yellow", "orange", "red")
    for side in ("upper", "lower"):
        levels = thresholds.get(side)
        if not levels:
            continue
        sign = 1.0 if side == "upper" else -1.0
        set_ = [(n, v) for n, v in zip(names, levels, strict=True) if v is not None]
        if set_:
            nearest = set_[0][1]
            lo, hi = min(lo, nearest), max(hi, nearest)
        for k, (name, v) in enumerate(set_):
            nxt = set_[k + 1][1] if k + 1 < len(set_) else v + sign * 1e12
            a, b = sorted((v, nxt))
            ax.axhspan(a, b, color=BAND_COLOURS[name], alpha=0.13, lw=0)
            ax.axhline(v, color=BAND_COLOURS[name], lw=0.8, ls="--")
    return lo, hi


def point_plot(point: dict, start: np.ndarray, vmin: np.ndarray, vmax: np.ndarray,
               mean: np.ndarray, episodes: list[dict], faults: list[dict],
               readings: list[dict], month_start: float, month_end: float, tz: ZoneInfo,
               lang: str) -> str:
    """A `data:image/png;base64,...` URI of the point's month."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import dates as mdates
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    cjk = _cjk_font(font_manager) if lang == "zh" else None
    zh = cjk is not None

    def label(key: str) -> str:
        return _LABELS[key][0 if zh else 1]

    def when(t):
        return datetime.fromtimestamp(float(t), tz)

    with plt.rc_context({"font.family": [cjk, "DejaVu Sans"] if cjk else ["DejaVu Sans"],
                         "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(9.0, 2.8), dpi=100)
        try:
            good = np.isfinite(mean)
            x = [when(t + 150) for t in start[good]]
            if good.any():
                ax.fill_between(x, vmin[good], vmax[good], color="#9aa5b1", alpha=0.45, lw=0,
                                label=label("range"))
                ax.plot(x, mean[good], color="#1d3557", lw=0.9, label=label("mean"))
                lo, hi = float(np.nanmin(vmin[good])), float(np.nanmax(vmax[good]))
            else:
                lo, hi = 0.0, 1.0
            if point.get("trend_per_day") is not None and good.sum() >= 2:
                days = (start[good] - start[good][0]) / 86400.0
                fit = np.polyfit(days, mean[good], 1)
                ax.plot([x[0], x[-1]], np.polyval(fit, [days[0], days[-1]]), color="#555555",
                        lw=1.0, ls=":", label=label("trend"))
            manual = [r for r in readings if r["point"] == point["point"]
                      and r["state"] == "done"]
            if manual:
                ax.plot([when(r["at"] / 1000) for r in manual], [r["value"] for r in manual],
                        "D", color="black", ms=5, label=label("manual"))
                lo = min(lo, min(r["value"] for r in manual))
                hi = max(hi, max(r["value"] for r in manual))
            lo, hi = _bands(ax, point.get("thresholds"), lo, hi)
            pad = (hi - lo) * 0.08 or max(abs(hi) * 0.001, 0.01)
            ax.set_ylim(lo - pad, hi + pad)
            for e in episodes:
                a = max(e["raised_at"] / 1000, month_start)
                b = e["cleared_at"] / 1000 if e["cleared_at"] else month_end
                ax.axvspan(when(a), when(min(b, month_end)), alpha=0.18, lw=0,
                           color=BAND_COLOURS.get(e["highest_level"], "#888888"))
            for k, f in enumerate(faults):
                a = max(f["raised_at"] / 1000, month_start)
                b = f["cleared_at"] / 1000 if f["cleared_at"] else month_end
                ax.axvspan(when(a), when(min(b, month_end)), ymin=0, ymax=0.05, color="#6c757d",
                           lw=0, label=label("fault") if k == 0 else None)
            ax.set_xlim(when(month_start), when(month_end))
            ax.xaxis.set_major_locator(mdates.DayLocator(interval=3, tz=tz))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=tz))
            unit = point.get("unit", "")
            ax.set_ylabel(f"{point['point']} ({unit})" if unit else point["point"], fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, lw=0.3, alpha=0.5)
            ax.legend(fontsize=7, loc="upper left", ncol=5, frameon=False)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        finally:
            plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
