"""Alert and fault episodes of a month, from the alert log's events.

An episode is every event of one `alert_id`, from `raised` to `cleared`. For a safety episode the
report gives its highest level, the time at or above each level (from the level each event set,
until the next event), when it was acknowledged and by whom (the first `acknowledged` row of the
episode, issue 17), and how long acknowledging and clearing took from the raise. For a fault it
gives what failed (the quality, or the condition: counter_reset, comparison, storage_full …) and
how long, from the fault's own start (`since`: the first bad poll, not the poll that made it a
fault). Everything is clipped to the month: an episode open at its start counts from the month's
start, one still open at its end until the end. Events of other states (a reminder) change no
level.

>>> ev = [{"alert_id": "a", "kind": "safety", "state": "raised", "level": "blue", "point": "P",
...        "observed_at": 0, "since": 0, "seq": 1, "detector": "threshold"},
...       {"alert_id": "a", "kind": "safety", "state": "escalated", "level": "red",
...        "point": "P", "observed_at": 600_000, "since": 0, "seq": 2, "detector": "threshold"},
...       {"alert_id": "a", "kind": "safety", "state": "cleared", "level": "none", "point": "P",
...        "observed_at": 1_800_000, "since": 0, "seq": 3, "detector": "threshold"}]
>>> (e,), _ = episodes(ev, 0.0, 86400.0)
>>> e["highest_level"], e["seconds_at_or_above"]["blue"], e["seconds_at_or_above"]["red"]
('red', 1800.0, 1200.0)
"""

from __future__ import annotations

__all__ = ["episodes", "LEVELS"]

LEVELS = ("none", "blue", "yellow", "orange", "red")
_LEVEL = {name: k for k, name in enumerate(LEVELS)}
_CHANGES = ("raised", "escalated", "downgraded", "cleared")


def _ms(t: float | None) -> int | None:
    return None if t is None else int(round(t * 1000))


def _fault_kind(ev: dict) -> str:
    f = ev.get("fault") or {}
    return str(f.get("condition") or f.get("quality_name") or "fault")


def _source(ev: dict) -> str:
    point = str(ev.get("point", ""))
    if ev.get("detector") == "manual":
        return "manual"
    if point.startswith(("item:", "pond:")) or ev.get("detector") == "aggregate":
        return "item"
    return "automatic"


def episodes(rows: list[dict], start: float, end: float) -> tuple[list[dict], list[dict]]:
    """(safety episodes, fault episodes) overlapping [start, end), by their first event."""
    by_id: dict[str, list[dict]] = {}
    for ev in rows:
        if ev.get("alert_id"):
            by_id.setdefault(ev["alert_id"], []).append(ev)
    safety, faults = [], []
    for alert_id, evs in by_id.items():
        evs.sort(key=lambda e: e.get("seq", 0))
        changes = [e for e in evs if e.get("state") in _CHANGES]
        if not changes:
            continue  # an acknowledgement of an episode older than the log kept
        first = changes[0]
        raised = first.get("since", first["observed_at"]) / 1000.0
        cleared = next((e["observed_at"] / 1000.0 for e in changes
                        if e["state"] == "cleared"), None)
        stop = min(end, cleared) if cleared is not None else end
        if stop <= start and cleared is not None:
            continue
        base = {"alert_id": alert_id, "point": first.get("point", ""),
                "device": first.get("device", ""), "raised_at": _ms(raised),
                "cleared_at": _ms(cleared), "open": cleared is None or cleared >= end,
                "duration_s": round(max(0.0, stop - max(start, raised)), 3),
                "events": len(evs)}
        if first.get("kind") == "fault":
            faults.append({**base, "kind": _fault_kind(first),
                           "hours": round(base["duration_s"] / 3600.0, 4)})
            continue
        at_or_above = {name: 0.0 for name in LEVELS[1:]}
        highest = 0
        for k, e in enumerate(changes):
            level = _LEVEL.get(e.get("level", "none"), 0)
            t0 = max(start, e["observed_at"] / 1000.0)
            t1 = min(end, changes[k + 1]["observed_at"] / 1000.0) if k + 1 < len(changes) \
                else stop
            if t1 > t0:
                highest = max(highest, level)
                for j in range(1, level + 1):
                    at_or_above[LEVELS[j]] += t1 - t0
            elif start <= e["observed_at"] / 1000.0 < end:
                highest = max(highest, level)
        ack = next((e for e in evs if e.get("state") == "acknowledged"), None)
        ack_at = ack["observed_at"] / 1000.0 if ack else None
        safety.append({
            **base, "source": _source(first), "detector": first.get("detector", ""),
            "highest_level": LEVELS[highest],
            "seconds_at_or_above": {k: round(v, 3) for k, v in at_or_above.items()},
            "acknowledged_at": _ms(ack_at),
            "acknowledged_by": ((ack.get("ack") or {}).get("by") if ack else None),
            "ack_after_s": round(ack_at - raised, 3) if ack_at is not None else None,
            "cleared_after_s": round(cleared - raised, 3) if cleared is not None else None,
        })
    safety.sort(key=lambda e: e["raised_at"])
    faults.sort(key=lambda e: e["raised_at"])
    return safety, faults
