"""Events of manual readings: a person's reading at a warning level, and a reading that disagrees
with the automatic one.

A manual reading (quality `manual`, docs/contracts.md#quality-codes) is graded by the point's
threshold detector (`gateway/manual/grade.py`). A grade at blue or above opens a safety episode of
its own, beside the point's automatic one (state key `manual/<point>`, detector `manual`): the
next manual reading of the point escalates, downgrades or clears it. Only a person clears what a
person reported, as a dead sensor never clears an alarm; the automatic detectors' episodes and
their state are not touched.

A reading farther from the automatic value than the point's `manual_tolerance` raises a
condition fault (kind `fault`, never a colour, `fault.condition = "comparison"`; GB 39496-2020
§5.5.3 comparison measurements: a disagreement is the sign of a drifting sensor); the next
reading of that point that agrees clears it, with the fault's duration. Every event carries the
reading in its `reading` block (`quality` 6, manual).
"""

from __future__ import annotations

import math

import numpy as np

from gateway.alerts.encoder import LEVEL_NAMES, ROMAN, safety_message
from gateway.config.model import SiteConfig
from gateway.outbox import AlertState

__all__ = ["ManualEvents"]

_COMPARISON = (
    "{point} 人工比测 {manual} {unit} 与自动监测 {auto} {unit} 相差 {diff} {unit}，超过允许偏差 "
    "{tol} {unit}：传感器可能漂移，请核查",
    "{point}: manual reading {manual} {unit} differs from the automatic {auto} {unit} by "
    "{diff} {unit}, more than the tolerance of {tol} {unit}: the sensor may be drifting")
_AGREES = ("{point} 人工比测与自动监测一致（相差 {diff} {unit}），比测故障解除",
           "{point}: manual and automatic readings agree again (difference {diff} {unit})")


def _fmt(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".")


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


class ManualEvents:
    def __init__(self, cfg: SiteConfig, alert_topic: str, fault_topic: str, states: dict):
        self.cfg = cfg
        self.alert_topic, self.fault_topic = alert_topic, fault_topic
        n = len(cfg.points)
        self.level = np.zeros(n, np.int8)
        self.alert_id: list[str | None] = [None] * n
        self.since = np.full(n, np.nan)
        self.comparison_id: list[str | None] = [None] * n
        self.comparison_since = np.full(n, np.nan)
        for p in cfg.points:
            s = states.get(f"manual/{p.name}")
            if s and s.level > 0:
                self.level[p.index], self.alert_id[p.index] = s.level, s.alert_id
                self.since[p.index] = s.since if s.since is not None else np.nan
            c = states.get(f"comparison/{p.name}")
            if c and c.level > 0:
                self.comparison_id[p.index] = c.alert_id
                self.comparison_since[p.index] = c.since if c.since is not None else np.nan

    def active(self) -> list[dict]:
        out = []
        for p in self.cfg.points:
            i = p.index
            if self.level[i]:
                out.append({"kind": "safety", "point": p.name, "level": LEVEL_NAMES[self.level[i]],
                            "alert_id": self.alert_id[i], "since": float(self.since[i]),
                            "detector": "manual"})
            if self.comparison_id[i]:
                out.append({"kind": "fault", "point": p.name, "condition": "comparison",
                            "alert_id": self.comparison_id[i],
                            "since": float(self.comparison_since[i])})
        return out

    def reading(self, t: float, i: int, value: float, grade: int, threshold: float | None,
                evidence: dict, reading: dict, comparison: dict | None, base,
                new_id, events: list, states: list) -> None:
        """The events of one graded reading of point `i` at time `t`; `comparison` holds the
        automatic value, the difference, the tolerance and whether they agree (None: not
        compared). `base(point, t)` gives an event's common fields, `new_id()` a new UUID."""
        p = self.cfg.points[i]
        prev = int(self.level[i])
        if grade != prev:
            if prev == 0:
                state = "raised"
                self.alert_id[i], self.since[i] = new_id(), t
            else:
                state = "cleared" if grade == 0 else "escalated" if grade > prev else "downgraded"
            message = safety_message(state, grade, prev, p.name, p.quantity, value, p.unit,
                                     threshold)
            by = reading.get("by", "")
            ev = {**base(p, t), "alert_id": self.alert_id[i], "kind": "safety", "state": state,
                  "level": LEVEL_NAMES[grade], "grade_roman": ROMAN[grade],
                  "prev_level": LEVEL_NAMES[prev], "detector": "manual", "value": _num(value),
                  "threshold": _num(threshold),
                  "criterion": "manual reading graded by the point's thresholds",
                  "evidence": {k: _num(v) for k, v in evidence.items()},
                  "message": {"zh": f"人工读数（{by}）：{message['zh']}",
                              "en": f"manual reading by {by}: {message['en']}"},
                  "since": int(round(self.since[i] * 1000)), "reading": reading}
            events.append((self.alert_topic, ev))
            self.level[i] = grade
            if grade == 0:
                states.append(AlertState(f"manual/{p.name}", 0, None, None))
                self.alert_id[i], self.since[i] = None, np.nan
            else:
                states.append(AlertState(f"manual/{p.name}", grade, self.alert_id[i],
                                         float(self.since[i]), "manual"))
        if comparison is None or comparison["agrees"] is None:
            return
        agrees = comparison["agrees"]
        if not agrees and self.comparison_id[i] is None:
            self.comparison_id[i], self.comparison_since[i] = new_id(), t
            events.append((self.fault_topic, self._comparison(p, t, "raised", comparison,
                                                              reading, base)))
            states.append(AlertState(f"comparison/{p.name}", 1, self.comparison_id[i], t,
                                     "comparison"))
        elif agrees and self.comparison_id[i] is not None:
            events.append((self.fault_topic, self._comparison(p, t, "cleared", comparison,
                                                              reading, base)))
            states.append(AlertState(f"comparison/{p.name}", 0, None, None))
            self.comparison_id[i], self.comparison_since[i] = None, np.nan

    def _comparison(self, p, t: float, state: str, c: dict, reading: dict, base) -> dict:
        i = p.index
        since = float(self.comparison_since[i])
        words = {"point": p.name, "unit": p.unit, "manual": _fmt(c["manual"]),
                 "auto": _fmt(c["automatic"]), "diff": _fmt(abs(c["difference"])),
                 "tol": _fmt(c["tolerance"])}
        zh, en = _COMPARISON if state == "raised" else _AGREES
        return {**base(p, t), "alert_id": self.comparison_id[i], "kind": "fault",
                "state": state, "level": "none", "grade_roman": None, "prev_level": "none",
                "detector": "comparison", "value": _num(c["manual"]),
                "threshold": _num(c["tolerance"]),
                "criterion": "|manual - automatic| > manual_tolerance",
                "evidence": {"manual": _num(c["manual"]), "automatic": _num(c["automatic"]),
                             "difference": _num(c["difference"]),
                             "tolerance": _num(c["tolerance"])},
                "fault": {"condition": "comparison", "duration_s": round(max(0.0, t - since), 3),
                          "stage": "cleared" if state == "cleared" else "open"},
                "message": {"zh": zh.format(**words), "en": en.format(**words)},
                "since": int(round(since * 1000)), "reading": reading}
