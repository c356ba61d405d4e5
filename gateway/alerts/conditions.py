"""Condition faults: a read that is a fault in its own right though its value is good.

A tipping-bucket counter that went back (cleared by an operator, or reset by a power loss) is the
one such condition today: its reading still counts (the rain since the reset), but the rain
between the last read and the reset is lost, and GB 39496-2020 §5.5.3 wants the system to
self-diagnose it (docs/requirements.md R9). It is a fault event (kind `fault`, never a colour,
`fault.condition = "counter_reset"`), raised at the read that saw it and cleared at the point's
next read without one, so the platform sees one short episode with the counter's values.
"""

from __future__ import annotations

import uuid

import numpy as np

from gateway.config.model import SiteConfig
from gateway.outbox import AlertState

__all__ = ["ConditionFaults"]

_TEXT = {
    "counter_reset": (
        "{point} 雨量计计数器复位（{frm:g} → {to:g}，清零或断电）：复位后的降雨照常计入，"
        "上次读数至复位之间的降雨丢失",
        "{point}: rain counter went back from {frm:g} to {to:g} (cleared, or a power loss): the "
        "rain since the reset counts, the rain between the last reading and the reset is lost"),
}
_CLEARED = ("{point} 计数器已恢复正常读数", "{point}: the counter reads on normally")


class ConditionFaults:
    def __init__(self, cfg: SiteConfig, topic: str, states: dict):
        self.cfg = cfg
        self.topic = topic
        n = len(cfg.points)
        self.open_id: list[str | None] = [None] * n
        self.kind: list[str | None] = [None] * n
        self.since = np.full(n, np.nan)
        self._open = 0  # how many open_id are set: asked for every batch, so kept, not counted
        for p in cfg.points:
            s = states.get(f"condition/{p.name}")
            if s and s.level > 0:
                self.open_id[p.index], self.kind[p.index] = s.alert_id, s.detail or None
                self._open += 1
                self.since[p.index] = s.since if s.since is not None else np.nan

    @property
    def any_open(self) -> bool:
        return self._open > 0

    def events(self, t: float, idx: np.ndarray, conditions: tuple, base, events: list,
               states: list) -> None:
        """Raise the batch's conditions, clear the open ones of its points that have none."""
        seen = set()
        for j, condition, detail in conditions:
            i = int(idx[j])
            seen.add(i)
            if self.open_id[i] is None:
                self.open_id[i], self.kind[i], self.since[i] = str(uuid.uuid4()), condition, t
                self._open += 1
                events.append((self.topic, self._event(i, t, "raised", detail, base)))
                states.append(AlertState(f"condition/{self.cfg.points[i].name}", 1,
                                         self.open_id[i], t, condition))
        for i in idx.tolist():
            if self.open_id[i] is not None and i not in seen:
                events.append((self.topic, self._event(i, t, "cleared", {}, base)))
                states.append(AlertState(f"condition/{self.cfg.points[i].name}", 0, None, None))
                self.open_id[i], self.kind[i], self.since[i] = None, None, np.nan
                self._open -= 1

    def _event(self, i: int, t: float, state: str, detail: dict, base) -> dict:
        p = self.cfg.points[i]
        kind = self.kind[i] or "counter_reset"
        since = float(self.since[i])
        if state == "raised":
            zh, en = _TEXT[kind]
            words = {"point": p.name, "frm": float(detail.get("from", np.nan)),
                     "to": float(detail.get("to", np.nan))}
            message = {"zh": zh.format(**words), "en": en.format(**words)}
        else:
            message = {"zh": _CLEARED[0].format(point=p.name),
                       "en": _CLEARED[1].format(point=p.name)}
        evidence = {k: float(v) for k, v in detail.items() if isinstance(v, int | float)}
        return {**base(p, t), "alert_id": self.open_id[i], "kind": "fault", "state": state,
                "level": "none", "grade_roman": None, "prev_level": "none",
                "detector": "conversion", "value": None, "threshold": None,
                "criterion": f"{kind}: the counter went back without wrapping",
                "evidence": evidence,
                "fault": {"condition": kind, "duration_s": round(max(0.0, t - since), 3),
                          "stage": "cleared" if state == "cleared" else "open"},
                "message": message, "since": int(round(since * 1000))}
