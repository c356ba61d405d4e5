"""Item and pond events: the GB 39496-2020 §5.5.4 rule over measuring stations, then the pond.

The rule counts measuring points (监测点) of one monitoring item: 4 at blue make the item yellow,
3 at yellow orange, 2 at orange red (docs/standards.md#gb-39496-2020-554). A measuring point is an
instrument location, not a channel: the two axes of one GNSS station, the depths of one
inclinometer, a piezometer's head and depth are one station (the `station` key of their
`[[points]]`; a point without one is its own station), at the highest level of its channels. So
one station moving cannot make its item red by itself. The rule is a tailings-pond rule: it is on
for tailings items with two or more stations.

A point's level here is the higher of its automatic episode and its manual one: GB 39496-2020
§5.5.3 counts a manual (supplementary) measurement as a measurement of the point, so a person's
reading at orange makes the point orange for the rule until a person's reading clears it
(`gateway.alerts.manual`). An item event says how many of its stations a manual reading lifted.

The pond's grade from its items (published as point `pond`, detector `pond_rule`): the highest
item level, and four items at blue count as one yellow item. The clause goes on beyond that first
sentence, which we could not read, so the rest is this project's reading (docs/requirements.md R6).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np

from detectors.aggregate import item_levels
from gateway.alerts.encoder import LEVEL_NAMES, LEVEL_ZH, ROMAN
from gateway.config.model import SiteConfig
from gateway.config.quantities import QUANTITIES, TAILINGS_ITEMS
from gateway.outbox import AlertState

__all__ = ["Aggregation", "POND_POINT", "pond_level"]

POND_POINT = "pond"
_ITEM_RULE = ("GB 39496-2020 §5.5.4: 4 stations at blue make the item yellow, 3 at yellow "
              "orange, 2 at orange red; else the highest station level")
_POND_RULE = ("GB 39496-2020 §5.5.4: 4 items at blue count as one yellow item; else the highest "
              "item level")


def pond_level(item_levels_: np.ndarray) -> int:
    """The pond's level from its items' levels (0 without items)."""
    levels = np.asarray(item_levels_, dtype=np.int64)
    if not levels.size:
        return 0
    level = int(levels.max())
    if np.count_nonzero(levels >= 1) >= 4:
        level = max(level, 2)
    return level


class Aggregation:
    """Item and pond levels from point levels, and their events (committed with the points')."""

    def __init__(self, cfg: SiteConfig, alert_topic: str, states: dict,
                 base: Callable[[float], dict]):
        self.cfg = cfg
        self.topic = alert_topic
        self.base = base
        points = cfg.points
        self.items = sorted({p.quantity for p in points})
        keys = sorted({(p.quantity, p.station or p.name) for p in points})
        self.stations = [name for _, name in keys]
        at = {key: k for k, key in enumerate(keys)}  # list.index per point is quadratic
        item_at = {q: k for k, q in enumerate(self.items)}
        self.station_of_point = np.array([at[(p.quantity, p.station or p.name)]
                                          for p in points], dtype=np.int64)
        self.item_of_station = np.array([item_at[q] for q, _ in keys], dtype=np.int64)
        per_item = np.bincount(self.item_of_station, minlength=len(self.items))
        self.enabled = np.array([q in TAILINGS_ITEMS and per_item[k] >= 2
                                 for k, q in enumerate(self.items)], dtype=bool)
        n = len(self.items)
        self.level = np.zeros(n, dtype=np.int8)
        self.alert_id: list[str | None] = [None] * n
        self.since = np.full(n, np.nan)
        self.pond = 0
        self.pond_alert_id: str | None = None
        self.pond_since = float("nan")
        for k, q in enumerate(self.items):
            s = states.get(f"item/{q}")
            if s and s.level > 0:
                self.level[k], self.alert_id[k] = s.level, s.alert_id
                self.since[k] = s.since if s.since is not None else np.nan
        s = states.get(f"pond/{cfg.site.code}")
        if s and s.level > 0:
            self.pond, self.pond_alert_id = int(s.level), s.alert_id
            self.pond_since = s.since if s.since is not None else float("nan")

    @property
    def active(self) -> bool:
        return bool(self.enabled.any())

    def station_levels(self, point_levels: np.ndarray) -> np.ndarray:
        out = np.zeros(len(self.stations), dtype=np.int64)
        np.maximum.at(out, self.station_of_point, np.asarray(point_levels, dtype=np.int64))
        return out

    def events(self, t: float, point_levels: np.ndarray, events: list, states: list,
               manual_levels: np.ndarray | None = None) -> None:
        """Item events where an enabled item's level changed, then the pond's. `point_levels`
        are the automatic episodes' levels, `manual_levels` the manual readings' (none: 0)."""
        automatic = self.station_levels(point_levels)
        stations = automatic if manual_levels is None else np.maximum(
            automatic, self.station_levels(manual_levels))
        lifted = stations > automatic
        levels, counts = item_levels(stations, self.item_of_station, len(self.items),
                                     self.enabled)
        for k in np.flatnonzero(self.enabled & (levels != self.level)):
            self._item_event(t, int(k), int(levels[k]), stations, counts[k], lifted, events,
                             states)
        new = pond_level(self.level[self.enabled])
        if new != self.pond:
            self._pond_event(t, new, events, states)

    def _transition(self, prev: int, new: int) -> str:
        if prev == 0:
            return "raised"
        return "cleared" if new == 0 else "escalated" if new > prev else "downgraded"

    def _item_event(self, t: float, k: int, new: int, stations: np.ndarray, at: np.ndarray,
                    by_manual: np.ndarray, events: list, states: list) -> None:
        q, prev = self.items[k], int(self.level[k])
        state = self._transition(prev, new)
        if prev == 0:
            self.alert_id[k], self.since[k] = str(uuid.uuid4()), t
        mine = np.flatnonzero(self.item_of_station == k)
        highest = int(stations[mine].max())
        by_level = {LEVEL_NAMES[lv]: [self.stations[s] for s in mine if stations[s] == lv]
                    for lv in range(1, 5)}
        info = QUANTITIES.get(q)
        zh_q, en_q = (info.zh, info.en) if info else (q, q)
        lifted = new > highest
        ev = {**self.base(t), "device": "", "point": f"item:{q}", "quantity": q,
              "unit": info.unit if info else "",
              "alert_id": self.alert_id[k], "kind": "safety", "state": state,
              "level": LEVEL_NAMES[new], "grade_roman": ROMAN[new], "prev_level": LEVEL_NAMES[prev],
              "detector": "aggregate", "value": None, "threshold": None, "criterion": _ITEM_RULE,
              "evidence": {"stations": len(mine), "at_blue": int(at[0]), "at_yellow": int(at[1]),
                           "at_orange": int(at[2]), "at_red": int(at[3]),
                           "highest_station_level": highest,
                           "stations_by_manual_reading": int(np.count_nonzero(by_manual[mine]))},
              "stations": {lv: s for lv, s in by_level.items() if s},
              "message": {
                  "zh": f"监测项目{zh_q}（{len(mine)} 个测点，{int(at[0])} 个达到蓝色及以上）"
                        + ("预警解除" if new == 0 else f"为{LEVEL_ZH[new]}预警")
                        + ("（多测点汇总升级）" if lifted else ""),
                  "en": f"item {en_q} ({len(mine)} stations, {int(at[0])} at blue or above): "
                        + ("warning cleared" if new == 0 else f"{LEVEL_NAMES[new]} warning")
                        + (" (raised by the multi-station rule)" if lifted else "")},
              "since": int(round(self.since[k] * 1000))}
        events.append((self.topic, ev))
        self.level[k] = new
        if new == 0:
            states.append(AlertState(f"item/{q}", 0, None, None))
            self.alert_id[k], self.since[k] = None, np.nan
        else:
            states.append(AlertState(f"item/{q}", new, self.alert_id[k], float(self.since[k])))

    def _pond_event(self, t: float, new: int, events: list, states: list) -> None:
        prev = self.pond
        state = self._transition(prev, new)
        if prev == 0:
            self.pond_alert_id, self.pond_since = str(uuid.uuid4()), t
        items = {q: LEVEL_NAMES[int(lv)] for q, lv, on in zip(self.items, self.level, self.enabled,
                                                               strict=True) if on and lv > 0}
        at_blue = sum(1 for lv in self.level[self.enabled] if lv >= 1)
        site = self.cfg.site
        ev = {**self.base(t), "device": "", "point": POND_POINT, "quantity": "pond", "unit": "",
              "alert_id": self.pond_alert_id, "kind": "safety", "state": state,
              "level": LEVEL_NAMES[new], "grade_roman": ROMAN[new], "prev_level": LEVEL_NAMES[prev],
              "detector": "pond_rule", "value": None, "threshold": None, "criterion": _POND_RULE,
              "evidence": {"items_at_blue": at_blue}, "items": items,
              "message": {
                  "zh": f"尾矿库 {site.name or site.code}（{at_blue} 个监测项目达到蓝色及以上）"
                        + ("预警解除" if new == 0 else f"为{LEVEL_ZH[new]}预警"),
                  "en": f"pond {site.name or site.code} ({at_blue} items at blue or above): "
                        + ("warning cleared" if new == 0 else f"{LEVEL_NAMES[new]} warning")},
              "since": int(round(self.pond_since * 1000))}
        events.append((self.topic, ev))
        self.pond = new
        key = f"pond/{site.code}"
        if new == 0:
            states.append(AlertState(key, 0, None, None))
            self.pond_alert_id, self.pond_since = None, float("nan")
        else:
            states.append(AlertState(key, new, self.pond_alert_id, float(self.pond_since)))

