"""Which detectors cannot judge a point at its cadence, or judge it only slowly: the words that
`config validate`, the daemon's start-up log and `replay` print (docs/contracts.md#detector-protocol).

A point's period is its device's (the slower of the poll period and the device's own update
period) or, in a replay, the export's median step. Notes that a detector cannot judge are always
given; how a detector adapts its windows is said only for slow points (an hour or more apart),
where it matters: a threshold that needs three samples needs three days of daily data.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.cadence_notes import Note, duration_text, notes
from gateway.config.model import Point, SiteConfig

__all__ = ["PointNote", "point_notes", "point_period", "SLOW"]

SLOW = 3600.0  # from this period on, how the detectors adapt is worth saying


@dataclass(frozen=True)
class PointNote:
    point: str
    period: float
    note: Note

    def text(self) -> str:
        verdict = "cannot judge: " if not self.note.judges else ""
        return (f"{self.point} ({duration_text(self.period)} apart): {self.note.detector}: "
                f"{verdict}{self.note.text}")


def point_period(cfg: SiteConfig, p: Point) -> float | None:
    """Seconds between a point's samples as configured (None when unknown)."""
    if p.device:
        d = cfg.device(p.device)
        return max(d.period, d.profile.update_period)
    if p.formula is not None:
        inputs = [q for q in cfg.points if q.name in p.formula.inputs and q.device]
        periods = [point_period(cfg, q) for q in inputs]
        return max((x for x in periods if x), default=None)
    return None


def point_notes(cfg: SiteConfig, periods: dict[str, float] | None = None,
                all_notes: bool = False) -> list[PointNote]:
    """Notes for every point: `periods` (point name -> seconds) overrides the configured
    period (replay gives the observed one); `all_notes` also for fast points."""
    out: list[PointNote] = []
    for p in cfg.points:
        period = (periods or {}).get(p.name) or point_period(cfg, p)
        if not period:
            continue
        for det in p.detectors:
            for n in notes(det, p.quantity, period, p.params_of(det)):
                if not n.judges or all_notes or period >= SLOW:
                    out.append(PointNote(p.name, period, n))
    return out
