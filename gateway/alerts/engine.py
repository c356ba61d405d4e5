"""The alert engine: turns grade changes into safety events and quality changes into fault events.

It never second-guesses a grade (hysteresis and debounce belong to the detectors); it only names
the change (raised, escalated, downgraded, cleared), keeps one `alert_id` per episode from raise to
clear, gives every event its own `event_id`, and commits the events with its state to the outbox
in one transaction, where they get their gap-free `seq`.

Storm control: a point raised `storm_raises` times within `storm_window` is flapping; its
downgrades and clears are then published only once the lower grade has held for `storm_hold`, so
the uplink carries one episode instead of a stream of them. Escalations are never delayed and no
event is dropped: a downgrade that reverses within the hold was never a change of the published
level.

Faults (docs/contracts.md#quality-codes; GB 39496-2020 §5.5.3 self-diagnosis) are never coloured
safety alerts: a point whose quality stays bad for `fault_after` polls raises a fault event with the
quality kind, an open fault is escalated as it nears and passes the 7-day repair limit of
GB 51108-2015 §10.0.1, and the first good value clears it with the fault's duration.

Maintenance (`gateway/maintenance.py`): a point in a maintenance window publishes no change of
its safety level until the window ends; its fault events carry the window and are never
escalated toward the repair limit.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict, deque
from zoneinfo import ZoneInfo

import numpy as np

from detectors.base import Quality
from gateway.alerts.aggregation import Aggregation
from gateway.alerts.conditions import ConditionFaults
from gateway.alerts.criteria import describe
from gateway.alerts.encoder import (
    EVENT_SCHEMA,
    LEVEL_NAMES,
    QUALITY_NAMES,
    ROMAN,
    fault_message,
    time_fields,
    topic,
)
from gateway.alerts.manual import ManualEvents
from gateway.config.model import Point, SiteConfig
from gateway.outbox import AlertState, Outbox
from gateway.verdict import Verdict

__all__ = ["AlertEngine"]

log = logging.getLogger("minewatch.alerts")


class AlertEngine:
    def __init__(self, cfg: SiteConfig, outbox: Outbox, prefix: str):
        self.cfg = cfg
        self.policy = cfg.alerts
        self.outbox = outbox
        self.tz = ZoneInfo(cfg.site.timezone)
        self.points: tuple[Point, ...] = cfg.points
        self.alert_topic = topic(prefix, cfg.site.code, cfg.gateway.id, "alert")
        self.fault_topic = topic(prefix, cfg.site.code, cfg.gateway.id, "fault")
        self.fault_after = cfg.alerts.fault_after
        n = len(self.points)
        # recent raise times (storm control), only of the points that raised: a deque per point
        # of a 10,000-point site would hold 6 MB for nothing
        self.raises: defaultdict[int, deque] = defaultdict(deque)
        self.pending_since = np.full(n, np.nan)  # a held-back downgrade of a flapping point
        self.fault_stage = np.zeros(n, dtype=np.int8)  # 0 open, 1 repair due soon, 2 overdue
        self.held = 0  # downgrades or clears storm control held back (and later published)
        self.level = np.zeros(n, dtype=np.int8)
        self.holder: list[str | None] = [None] * n  # the detector that holds each level
        self.alert_id: list[str | None] = [None] * n
        self.since = np.full(n, np.nan)
        self.fault = np.zeros(n, dtype=np.uint8)  # quality code of the open fault, 0 = none
        self.fault_id: list[str | None] = [None] * n
        self.fault_since = np.full(n, np.nan)
        self.bad_run = np.zeros(n, dtype=np.int64)
        self.bad_since = np.full(n, np.nan)
        self.maintenance = None  # gateway.maintenance.Maintenance, set by the daemon
        self._suppressed: set[int] = set()  # points whose change maintenance holds back
        self._restore()

    def _restore(self) -> None:
        """Continue open episodes after a restart: the same alert_id, no duplicate 'raised'."""
        states = self.outbox.alert_states()
        # GB 39496-2020 §5.5.4: item levels over measuring stations, then the pond's
        self.aggregation = Aggregation(self.cfg, self.alert_topic, states, self._event_base)
        self.conditions = ConditionFaults(self.cfg, self.fault_topic, states)
        self.manual = ManualEvents(self.cfg, self.alert_topic, self.fault_topic, states)
        for p in self.points:
            s = states.get(f"safety/{p.name}")
            if s and s.level > 0:
                self.level[p.index] = s.level
                self.alert_id[p.index] = s.alert_id
                self.since[p.index] = s.since if s.since is not None else np.nan
                self.holder[p.index] = s.detail or None
            f = states.get(f"fault/{p.name}")
            if f and f.level > 0:
                self.fault[p.index] = f.level
                self.fault_id[p.index] = f.alert_id
                self.fault_since[p.index] = f.since if f.since is not None else np.nan
                self.fault_stage[p.index] = int(f.detail) if f.detail.isdigit() else 0

    def active(self) -> list[dict]:
        """Open safety alerts and faults, for status and health."""
        out = []
        for p in self.points:
            i = p.index
            if self.level[i] > 0:
                out.append({"kind": "safety", "point": p.name, "level": LEVEL_NAMES[self.level[i]],
                            "alert_id": self.alert_id[i], "since": float(self.since[i])})
            if self.fault[i] > 0:
                out.append({"kind": "fault", "point": p.name, "quality": int(self.fault[i]),
                            "alert_id": self.fault_id[i], "since": float(self.fault_since[i])})
        return out + self.manual.active()

    def process_manual(self, t: float, i: int, value: float, grade: int,
                       threshold: float | None, evidence: dict, reading: dict,
                       comparison: dict | None) -> list[dict]:
        """Events of one graded manual reading of point `i` (`gateway.alerts.manual`),
        committed to the outbox before this returns."""
        events: list[tuple[str, dict]] = []
        states: list[AlertState] = []
        before = int(self.manual.level[i])
        self.manual.reading(t, i, value, grade, threshold, evidence, reading, comparison,
                            self._base, lambda: str(uuid.uuid4()), events, states)
        if self.manual.level[i] != before and self.aggregation.active:
            self.aggregation.events(t, self.level, events, states, self.manual.level)
        return self.outbox.commit_events(events, states) if events else []

    def process(self, t: float, idx: np.ndarray, values: np.ndarray, quality: np.ndarray,
                verdict: Verdict, conditions: tuple = ()) -> list[dict]:
        """Events for one batch, committed to the outbox before this returns; `conditions` are
        the batch's condition faults (a rain counter reset, `gateway.alerts.conditions`)."""
        events: list[tuple[str, dict]] = []
        states: list[AlertState] = []
        if conditions or self.conditions.any_open:
            self.conditions.events(t, idx, conditions, self._base, events, states)
        prev_levels = self.level[idx]
        held = self.maintenance.held(idx, t) if self.maintenance is not None and \
            self.maintenance.any else None
        for j in np.flatnonzero((verdict.grade != prev_levels) | np.isfinite(self.pending_since[idx])):
            i, grade = int(idx[j]), int(verdict.grade[j])
            if held is not None and held[j]:
                self._hold_for_maintenance(i, grade, t)
                continue
            if grade < self.level[i] and self._storm_holds(i, t):
                continue
            self.pending_since[i] = np.nan
            if grade == self.level[i]:
                continue
            # a raise or an escalation is the decision of the detector that gives the new
            # level; a downgrade or a clear that of the detector that held the old one (its
            # grade fell: the combined grade is the highest of them), with the one that now
            # holds the lower level named
            if grade > self.level[i] or self.holder[i] is None:
                detector, held_by = verdict.detector_of(j), None
            else:
                detector = self.holder[i]
                held_by = verdict.detector_of(j) if grade > 0 else None
            self._safety_event(t, i, float(values[j]), grade, detector, held_by,
                               verdict.evidence_of(j, detector), events, states)
        if events and self.aggregation.active:
            self.aggregation.events(t, self.level, events, states, self.manual.level)
        bad = quality != Quality.GOOD
        # a good sample also ends a run of bad ones that had not yet made a fault
        if bad.any() or self.fault[idx].any() or self.bad_run[idx].any():
            self._fault_events(t, idx, quality, events, states, held)
        if not events:
            return []
        return self.outbox.commit_events(events, states)

    def _hold_for_maintenance(self, i: int, grade: int, t: float) -> None:
        """A change of level of a point in maintenance: said once in the log, never published."""
        if i in self._suppressed:
            return
        self._suppressed.add(i)
        w = self.maintenance.window_of(i, t)
        log.warning("%s would go %s -> %s; held back: in maintenance by %s until %s",
                    self.points[i].name, LEVEL_NAMES[self.level[i]], LEVEL_NAMES[grade],
                    w.by if w else "?", w.as_dict()["until_iso"] if w else "?",
                    extra={"event": "maintenance_held", "point": self.points[i].name})

    def maintenance_ended(self) -> None:
        """A window ended: the next batch publishes the level the detectors give then."""
        self._suppressed.clear()

    def _maintenance_field(self, i: int, t: float) -> dict:
        w = self.maintenance.window_of(i, t) if self.maintenance is not None else None
        if w is None:
            return {}
        return {"maintenance": {"by": w.by, "reason": w.reason,
                                "until": int(round(w.until * 1000))}}

    def _storm_holds(self, i: int, t: float) -> bool:
        """Whether storm control holds back this point's downgrade or clear for now."""
        recent = self.raises[i]
        while recent and t - recent[0] > self.policy.storm_window:
            recent.popleft()
        if len(recent) < self.policy.storm_raises:
            return False
        if math.isnan(self.pending_since[i]):
            self.pending_since[i] = t
            self.held += 1
            log.info("%s is flapping (%d raises in %g s): its downgrade waits %g s", self.points[i].name,
                     len(recent), self.policy.storm_window, self.policy.storm_hold,
                     extra={"event": "storm_hold", "point": self.points[i].name})
        return t - self.pending_since[i] < self.policy.storm_hold

    def _event_base(self, t: float) -> dict:
        return {"schema": EVENT_SCHEMA, "event_id": str(uuid.uuid4()), "site": self.cfg.site.code,
                "gateway": self.cfg.gateway.id, **time_fields("observed_at", t, self.tz)}

    def _base(self, p: Point, t: float) -> dict:
        return {**self._event_base(t),
                "device": p.device,  # empty for a formula point
                "point": p.name, "quantity": p.quantity, "unit": p.unit}

    def _safety_event(self, t: float, i: int, value: float, grade: int, detector: str,
                      held_by: str | None, evidence: dict[str, float], events: list,
                      states: list) -> None:
        p = self.points[i]
        prev = int(self.level[i])
        if prev == 0:
            state = "raised"
            self.alert_id[i] = str(uuid.uuid4())
            self.since[i] = t
            self.raises[i].append(t)
        elif grade == 0:
            state = "cleared"
        elif grade > prev:
            state = "escalated"
        else:
            state = "downgraded"
        said = describe(detector, state, grade, prev, p, value, evidence,
                        held_by if held_by != detector else None, self.tz, t)
        ev = self._base(p, t)
        ev.update({
            "alert_id": self.alert_id[i],
            "kind": "safety",
            "state": state,
            "level": LEVEL_NAMES[grade],
            "grade_roman": ROMAN[grade],
            "prev_level": LEVEL_NAMES[prev],
            "detector": detector,
            "value": _num(value),
            "threshold": _num(said.threshold),
            "criterion": said.criterion,
            "evidence": {k: _num(v) for k, v in evidence.items()},
            "message": said.message,
            "since": int(round(self.since[i] * 1000)),
        })
        if held_by is not None and held_by != detector:
            ev["held_by"] = held_by
        events.append((self.alert_topic, ev))
        self.level[i] = grade
        self.holder[i] = (held_by or detector) if grade > 0 else None
        if grade == 0:
            states.append(AlertState(f"safety/{p.name}", 0, None, None))
            self.alert_id[i] = None
            self.since[i] = np.nan
        else:
            states.append(AlertState(f"safety/{p.name}", grade, self.alert_id[i],
                                     float(self.since[i]), self.holder[i] or ""))
        log.info("%s %s %s -> %s value=%s", p.name, state, LEVEL_NAMES[prev], LEVEL_NAMES[grade],
                 _num(value), extra={"event": "alert", "point": p.name, "state": state,
                                     "alert_level": LEVEL_NAMES[grade], "detector": detector})

    def _fault_events(self, t: float, idx: np.ndarray, quality: np.ndarray, events: list,
                      states: list, held: np.ndarray | None = None) -> None:
        for j, i in enumerate(idx):
            i = int(i)
            in_maintenance = held is not None and bool(held[j])
            q = int(quality[j])
            p = self.points[i]
            if q != Quality.GOOD:
                if self.bad_run[i] == 0:
                    self.bad_since[i] = t
                self.bad_run[i] += 1
                # a detector's verdict (suspect: stuck, a spike) is decided by its detector, a
                # spike from the sample after it, so two samples make a fault; acquisition
                # faults (no answer, an exception, stale) wait `fault_after` polls
                need = min(self.fault_after, 2) if q == Quality.SUSPECT else self.fault_after
                if self.fault[i] == 0 and self.bad_run[i] >= need:
                    self.fault[i] = q
                    self.fault_id[i] = str(uuid.uuid4())
                    self.fault_since[i] = self.bad_since[i]
                    self.fault_stage[i] = 0
                    events.append((self.fault_topic, self._fault_event(p, t, "raised", q)))
                    states.append(AlertState(f"fault/{p.name}", q, self.fault_id[i],
                                             float(self.fault_since[i])))
                elif self.fault[i] and not in_maintenance:
                    # GB 51108-2015 §10.0.1: warn before the 7-day repair limit, and when passed
                    age = t - self.fault_since[i]
                    stage = 2 if age >= self.policy.repair_limit else \
                        1 if age >= self.policy.repair_warning else 0
                    if stage > self.fault_stage[i]:
                        self.fault_stage[i] = stage
                        events.append((self.fault_topic, self._fault_event(
                            p, t, "escalated", int(self.fault[i]))))
                        states.append(AlertState(f"fault/{p.name}", int(self.fault[i]),
                                                 self.fault_id[i], float(self.fault_since[i]),
                                                 str(stage)))
                continue
            self.bad_run[i] = 0
            if self.fault[i]:
                events.append((self.fault_topic,
                               self._fault_event(p, t, "cleared", int(self.fault[i]))))
                self.fault[i] = 0
                self.fault_id[i] = None
                self.fault_since[i] = np.nan
                states.append(AlertState(f"fault/{p.name}", 0, None, None))

    def _fault_event(self, p: Point, t: float, state: str, q: int) -> dict:
        i = p.index
        since = float(self.fault_since[i])
        duration = max(0.0, t - since)
        ev = self._base(p, t)
        ev.update({
            "alert_id": self.fault_id[i],
            "kind": "fault",
            "state": state,
            "level": "none",
            "grade_roman": None,
            "prev_level": "none",
            "detector": "acquisition",
            "value": None,
            "threshold": None,
            "criterion": f"quality {q} for {self.fault_after} or more polls",
            "evidence": {},
            "fault": {"quality": q, "quality_name": _QUALITY[q], "duration_s": round(duration, 3),
                      # GB 51108-2015 §10.0.1: a fault shall be cleared within 7 days
                      "repair_limit_s": self.policy.repair_limit,
                      "stage": "cleared" if state == "cleared" else _STAGES[self.fault_stage[i]]},
            "message": fault_message(state, p.name, p.device, q, duration,
                                     _STAGES[self.fault_stage[i]], self.policy.repair_limit),
            "since": int(round(since * 1000)),
            **self._maintenance_field(i, t),
        })
        log.warning("fault %s %s quality=%d", p.name, state, q,
                    extra={"event": "fault", "point": p.name, "state": state, "quality": q})
        return ev


_QUALITY = QUALITY_NAMES
_STAGES = ("open", "repair_due_soon", "repair_overdue")
_LEVEL_ZH = ("无", "蓝色", "黄色", "橙色", "红色")


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
