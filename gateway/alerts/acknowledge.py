"""Acknowledgements and reminders: a person on site saw the alert, or is chased until one does.

The platform's `ack` command (docs/commands.md#ack) names an alert (`alert_id`, one episode) and
who acknowledged it. The gateway publishes an `acknowledged` event of that alert: the same
`alert_id`, the next `seq`, the fields of the event that set its level, `observed_at` the time of
the acknowledgement, and `ack` with who, when and the note; it is in the alert log like every
event, which is the record of who acknowledged what when.

An orange or red safety alert that nobody acknowledged is published again as a `reminder` event
`ack_reminder` after it reached that level, then at intervals growing by `ack_reminder_growth` up
to `ack_reminder_max` (clock time), until it is acknowledged or cleared. An acknowledgement holds
for the level it was given at: an alert that escalates beyond it is unacknowledged again, and
reminders start over. Everything is rebuilt from the alert log at start, so a restart neither
forgets an acknowledgement nor starts the reminders over.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.alerts.encoder import LEVEL_NAMES, LEVEL_ZH, ROMAN, time_fields
from gateway.config.model import Commands

__all__ = ["Acknowledgements", "AckError"]

log = logging.getLogger("minewatch.alerts")

ORANGE = 3
_LEVEL = {name: k for k, name in enumerate(LEVEL_NAMES)}


class AckError(ValueError):
    """An acknowledgement that cannot be given: `code` says why (`not_found`)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class _Chase:
    level: int  # the level being chased
    base: float  # when it reached that level unacknowledged
    count: int  # reminders sent since
    next: float  # the next reminder


class Acknowledgements:
    def __init__(self, engine, outbox, policy: Commands, extra_open=None):
        self.engine = engine
        self.outbox = outbox
        self.policy = policy
        self.tz = ZoneInfo(engine.cfg.site.timezone)
        self.extra_open = extra_open or (lambda: {})  # e.g. the storage fault's episode
        self.acked: dict[str, int] = {}  # alert_id -> the level acknowledged
        self.chase: dict[str, _Chase] = {}
        self.reminders_sent = 0
        # each committed acknowledgement or reminder, to the InfluxDB sink beside the alert log
        self.on_committed: Callable[[list[dict]], None] | None = None
        self._restore()

    # -- what is open ----------------------------------------------------------------------------
    def open_alerts(self) -> dict[str, tuple[str, int]]:
        """alert_id -> (kind, level) of every open episode: points, items, the pond, faults."""
        e = self.engine
        out: dict[str, tuple[str, int]] = {}
        for i, a in enumerate(e.alert_id):
            if a is not None:
                out[a] = ("safety", int(e.level[i]))
        agg = e.aggregation
        for k, a in enumerate(agg.alert_id):
            if a is not None:
                out[a] = ("safety", int(agg.level[k]))
        if agg.pond_alert_id is not None:
            out[agg.pond_alert_id] = ("safety", int(agg.pond))
        for a in [*e.fault_id, *e.conditions.open_id]:
            if a is not None:
                out[a] = ("fault", 0)
        out.update(self.extra_open())
        return out

    def _restore(self) -> None:
        """Acknowledgements of the open alerts and their reminders so far, from the alert log."""
        if not self.policy.enabled:
            return
        for alert_id, (kind, level) in self.open_alerts().items():
            events = self.outbox.alert_events(alert_id)
            acked = [_LEVEL[ev["level"]] for ev in events if ev["state"] == "acknowledged"]
            if acked:
                self.acked[alert_id] = max(acked)
            if kind != "safety" or level < ORANGE or self.acked.get(alert_id, 0) >= level:
                continue
            base, count, last, seen = None, 0, None, 0
            for ev in events:
                t, lv = ev["observed_at"] / 1000.0, _LEVEL[ev["level"]]
                if ev["state"] in ("raised", "escalated") and lv >= ORANGE and lv > seen:
                    base, count, last, seen = t, 0, None, lv  # chased from here
                elif ev["state"] == "reminder" and base is not None:
                    count, last = count + 1, t
            if base is not None:
                nxt = (last + self._interval(count)) if last is not None else \
                    base + self.policy.ack_reminder
                self.chase[alert_id] = _Chase(level, base, count, nxt)

    def status(self, alert_id: str | None) -> dict | None:
        """For the status document: the level this open alert was acknowledged at."""
        if alert_id is None or alert_id not in self.acked:
            return None
        return {"level": LEVEL_NAMES[self.acked[alert_id]]}

    # -- acknowledging ----------------------------------------------------------------------------
    def acknowledge(self, alert_id: str, by: str, note: str, now: float,
                    command_id: str | None = None) -> dict:
        """Record and publish the acknowledgement; the answer says what was done. AckError when
        the gateway never had that alert."""
        events = [ev for ev in self.outbox.alert_events(alert_id)
                  if ev["state"] not in ("acknowledged", "reminder")]
        if not events:
            raise AckError("not_found", f"no alert {alert_id} in this gateway's alert log")
        last = events[-1]
        open_ = self.open_alerts()
        kind, level = open_.get(alert_id, (last["kind"], 0))
        is_open = alert_id in open_
        previous = [ev for ev in self.outbox.alert_events(alert_id)
                    if ev["state"] == "acknowledged"]
        if previous and _LEVEL[previous[-1]["level"]] >= level:
            first = previous[-1]["ack"]
            return {"alert_id": alert_id, "acknowledged": False, "open": is_open,
                    "level": LEVEL_NAMES[level], "already": first, "seq": previous[-1]["seq"]}
        ev = self._event(last, "acknowledged", level, now)
        ev["ack"] = {"by": by, "note": note, **time_fields("at", now, self.tz),
                     "command_id": command_id}
        ev["message"] = {
            "zh": f"{last['point']} {_zh_level(kind, level)}已由 {by} 确认"
                  + (f"（{note}）" if note else ""),
            "en": f"{last['point']} {_en_level(kind, level)} acknowledged by {by}"
                  + (f": {note}" if note else "")}
        committed = self._commit(ev)
        if is_open:
            self.acked[alert_id] = max(level, self.acked.get(alert_id, 0))
            self.chase.pop(alert_id, None)
        log.warning("alert %s (%s %s) acknowledged by %s", alert_id, last["point"],
                    LEVEL_NAMES[level], by, extra={"event": "acknowledged", "alert_id": alert_id,
                                                   "point": last["point"], "by": by})
        return {"alert_id": alert_id, "acknowledged": True, "open": is_open,
                "level": LEVEL_NAMES[level], "point": last["point"], "seq": committed["seq"],
                "event_id": committed["event_id"]}

    # -- reminders -------------------------------------------------------------------------------
    def _interval(self, count: int) -> float:
        """The wait after the `count`-th reminder (0: before the first)."""
        p = self.policy
        return min(p.ack_reminder * p.ack_reminder_growth ** count, p.ack_reminder_max)

    def tick(self, now: float) -> list[dict]:
        """Reminders that are due now (the daemon calls this every second); committed."""
        if not self.policy.enabled or not self.policy.ack_reminder:
            return []
        out = []
        open_ = self.open_alerts()
        for alert_id in [a for a in self.chase if a not in open_]:
            del self.chase[alert_id]
        for alert_id in [a for a in self.acked if a not in open_]:
            del self.acked[alert_id]
        for alert_id, (kind, level) in open_.items():
            if kind != "safety" or level < ORANGE or self.acked.get(alert_id, 0) >= level:
                self.chase.pop(alert_id, None)
                continue
            c = self.chase.get(alert_id)
            if c is None or level > c.level:
                base = self._reached(alert_id, level, now)
                c = self.chase[alert_id] = _Chase(level, base, 0, base + self.policy.ack_reminder)
            c.level = level  # a downgrade keeps the schedule
            if now < c.next:
                continue
            c.count += 1
            while c.next <= now:  # after a long stop: one reminder, not a burst
                c.next += self._interval(c.count)
            out.append(self._remind(alert_id, level, c, now))
        return [ev for ev in out if ev is not None]

    def clock_stepped(self, jump: float) -> None:
        """The wall clock was stepped by `jump` s: each reminder stays as far away as it was (a
        step back of a day would otherwise silence them for a day, a step forward remind at
        once of an alert "unacknowledged for six hours")."""
        for c in self.chase.values():
            c.base += jump
            c.next += jump

    def _reached(self, alert_id: str, level: int, now: float) -> float:
        """When the alert reached `level` (its raise or escalation event), else `now`."""
        for ev in reversed(self.outbox.alert_events(alert_id)):
            if ev["state"] in ("raised", "escalated") and _LEVEL[ev["level"]] == level:
                return min(ev["observed_at"] / 1000.0, now)
        return now

    def _remind(self, alert_id: str, level: int, c: _Chase, now: float) -> dict | None:
        events = [ev for ev in self.outbox.alert_events(alert_id)
                  if ev["state"] not in ("acknowledged", "reminder")]
        if not events:
            return None
        last = events[-1]
        minutes = (now - c.base) / 60.0
        ev = self._event(last, "reminder", level, now)
        ev["reminder"] = {"count": c.count, "unacknowledged_s": round(now - c.base, 3),
                          "next_in_s": round(c.next - now, 3)}
        ev["message"] = {
            "zh": f"{last['point']} {LEVEL_ZH[level]}预警已持续 {minutes:.0f} 分钟无人确认"
                  f"（第 {c.count} 次提醒）",
            "en": f"{last['point']} {LEVEL_NAMES[level]} warning unacknowledged for "
                  f"{minutes:.0f} min (reminder {c.count})"}
        self.reminders_sent += 1
        log.warning("alert %s (%s %s) unacknowledged for %.0f min: reminder %d", alert_id,
                    last["point"], LEVEL_NAMES[level], minutes, c.count,
                    extra={"event": "reminder", "alert_id": alert_id, "point": last["point"]})
        return self._commit(ev)

    def _event(self, last: dict, state: str, level: int, now: float) -> dict:
        """A new event of the alert of `last`, at its current level."""
        ev = {k: v for k, v in last.items()
              if k not in ("seq", "sent_at", "sent_at_iso", "ack", "reminder", "held_by")}
        ev.update({"event_id": str(uuid.uuid4()), "state": state,
                   "level": LEVEL_NAMES[level] if last["kind"] == "safety" else "none",
                   "grade_roman": ROMAN[level] if last["kind"] == "safety" else None,
                   "prev_level": LEVEL_NAMES[level] if last["kind"] == "safety" else "none",
                   **time_fields("observed_at", now, self.tz)})
        return ev

    def _commit(self, ev: dict) -> dict:
        topic = self.engine.alert_topic if ev["kind"] == "safety" else self.engine.fault_topic
        committed = self.outbox.commit_events([(topic, ev)], [])[0]
        if self.on_committed is not None:
            self.on_committed([committed])
        return committed


def _zh_level(kind: str, level: int) -> str:
    return "故障" if kind == "fault" else f"{LEVEL_ZH[level]}预警" if level else "预警（已解除）"


def _en_level(kind: str, level: int) -> str:
    return "fault" if kind == "fault" else f"{LEVEL_NAMES[level]} warning" if level else \
        "warning (cleared)"
