"""The durable outbox: gap-free seq across restarts, drain order, and the telemetry-only cap."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.outbox import AlertState, Outbox


def _event(n: int) -> dict:
    return {"event_id": f"00000000-0000-0000-0000-{n:012d}", "alert_id": "a", "kind": "safety",
            "state": "raised", "level": "blue", "point": "WL-01", "observed_at": 1000 * n}


def test_seq_is_gap_free_across_reopen_and_committed_with_state(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(path)
    out = ob.commit_events([("t/alert", _event(1)), ("t/alert", _event(2))],
                           [AlertState("safety/WL-01", 1, "a", 1.0)])
    assert [e["seq"] for e in out] == [1, 2]
    ob.close()
    ob = Outbox(path)  # a restart
    assert ob.alert_states()["safety/WL-01"].level == 1
    out = ob.commit_events([("t/alert", _event(3))], [])
    assert out[0]["seq"] == 3 and ob.last_seq() == 3
    rows = ob.peek(10)
    assert [json.loads(r.payload)["seq"] for r in rows] == [1, 2, 3]


def test_events_drain_before_telemetry_and_ack_marks_delivery(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.add_telemetry([("t/telemetry", b'{"v":1}')])
    ob.commit_events([("t/alert", _event(1))], [])
    first = ob.peek(1)[0]
    assert first.topic == "t/alert" and first.seq == 1
    ob.ack(first)
    assert ob.peek(1)[0].topic == "t/telemetry"
    assert ob.alert_log()[0]["delivered_at"] is not None
    assert ob.depth() == {"events": 0, "telemetry": 1}


def test_cap_drops_oldest_telemetry_never_alerts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=2000)
    for i in range(10):
        ob.commit_events([("t/alert", _event(i + 1))], [])
    alerts_bytes = sum(len(r.payload) for r in ob.peek(100))
    ob.max_bytes = alerts_bytes + 400
    ob.add_telemetry([("t/telemetry", json.dumps({"n": i, "pad": "x" * 80}).encode())
                      for i in range(20)])
    depth = ob.depth()
    assert depth["events"] == 10
    assert 0 < depth["telemetry"] < 20 and ob.dropped_telemetry == 20 - depth["telemetry"]
    kept = [json.loads(r.payload)["n"] for r in ob.peek(100) if r.topic == "t/telemetry"]
    assert kept == list(range(20 - len(kept), 20))  # the newest survive
    # alerts alone over the cap: kept, the outbox grows
    ob.max_bytes = 10
    ob.commit_events([("t/alert", _event(11))], [])
    assert ob.depth()["events"] == 11 and ob.depth()["telemetry"] == 0


def test_threshold_changes_are_audit_logged(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    first = {"WL-01": {"direction": "upper", "red": 1256.0}, "JRX-01": None}
    assert ob.audit_thresholds(first, 1.0) == []  # the first run records, nothing changed
    assert ob.audit_thresholds(first, 2.0) == []
    changed = {"WL-01": {"direction": "upper", "red": 1255.5}, "JRX-01": None}
    (entry,) = ob.audit_thresholds(changed, 3.0)
    assert entry["subject"] == "WL-01" and entry["before"]["red"] == 1256.0
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite")  # permanent: survives a restart
    (logged,) = ob.audit_log()
    assert (logged["at"], logged["after"]["red"]) == (3.0, 1255.5)
