"""The durable outbox: gap-free seq across restarts, drain order, the telemetry-only cap, what a
full or read-only disk does (events held in memory in seq order, the reserve), and receipts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.outbox import AlertState, Outbox
from gateway.outbox_hold import HeldEvent, Hold
from gateway.state_dir import StorageGuard


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


def _refuse_growth(ob: Outbox) -> None:
    """SQLite's own size limit: every write that needs a new page fails with SQLITE_FULL
    ("database or disk is full"), exactly as on a full disk."""
    pages = ob.db.execute("PRAGMA page_count").fetchone()[0]
    ob.db.execute(f"PRAGMA max_page_count={pages}")


def _allow_growth(ob: Outbox) -> None:
    ob.db.execute("PRAGMA max_page_count=1073741823")


def test_a_full_disk_holds_events_in_memory_in_seq_order_and_commits_them_later(
        tmp_path: Path, caplog) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.commit_events([("t/alert", _event(1))], [AlertState("safety/WL-01", 1, "a", 1.0)])
    _refuse_growth(ob)
    with caplog.at_level("INFO"):
        out = [ob.commit_events([("t/alert", _event(n))], [AlertState("safety/WL-01", n, "a", 1.0)])
               for n in range(2, 30)]
        ob.add_telemetry([("t/telemetry", b'{"v":1}')])
    assert [e[0]["seq"] for e in out] == list(range(2, 30))  # seq goes on, gap-free
    assert ob.guard.state == "full" and ob.hold.counts()["held_events"] > 0
    failed = [r for r in caplog.records if getattr(r, "event", "") == "storage_failed"]
    assert len(failed) == 1 and str(tmp_path) in failed[0].getMessage()  # once, naming the path
    # the publisher sees committed events, then held ones, in seq order, then telemetry
    rows = ob.peek(100)
    assert [r.seq for r in rows if r.priority == 0] == list(range(1, 30))
    assert rows[-1].topic == "t/telemetry" and rows[-1].held
    for r in rows[:20]:  # sent directly while the disk refuses them
        ob.ack(r)
    assert [r.seq for r in ob.peek(100) if r.priority == 0] == list(range(21, 30))
    assert ob.flush() is False  # the disk still refuses
    _allow_growth(ob)
    with caplog.at_level("INFO"):
        assert ob.flush() is True
    assert ob.guard.state == "ok" and not ob.hold
    assert any(getattr(r, "event", "") == "storage_recovered" for r in caplog.records)
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite")  # everything reached the file
    log = ob.alert_log(1000)
    assert [e["seq"] for e in log] == list(range(1, 30)) and ob.last_seq() == 29
    assert all(e["delivered_at"] for e in log[:20]) and not any(e["delivered_at"] for e in log[20:])
    assert [r.seq for r in ob.peek(100) if r.priority == 0] == list(range(21, 30))
    assert ob.alert_states()["safety/WL-01"].level == 29  # the states committed with them
    assert ob.depth() == {"events": 9, "telemetry": 1}


def test_the_reserve_is_given_to_an_alert_that_finds_the_disk_full(tmp_path: Path) -> None:
    guard = StorageGuard(tmp_path, reserve_bytes=64 * 1024)
    assert guard.ensure_reserve() and guard.reserve_path.stat().st_size == 64 * 1024
    ob = Outbox(tmp_path / "o.sqlite", guard=guard)
    _refuse_growth(ob)
    ob.add_telemetry([("t/telemetry", b"x" * 5000)])  # telemetry never takes the reserve
    assert guard.reserve_path.exists() and guard.state == "full"
    big = {**_event(1), "message": "x" * 5000}
    ob.commit_events([("t/alert", big)], [])  # an alert does (then still fails here:
    assert not guard.reserve_path.exists() and guard.released  # the limit is SQLite's own)
    assert guard.paused() and ob.hold.counts()["held_events"] == 1
    _allow_growth(ob)
    ob.flush()  # the alert is committed; telemetry waits while the reserve is out
    assert guard.state == "full" and ob.hold.counts()["held_events"] == 0
    assert ob.hold.counts()["held_telemetry"] == 1
    assert guard.ensure_reserve() and guard.state == "ok"
    assert ob.flush() and ob.depth() == {"events": 1, "telemetry": 1}


def test_the_hold_drops_telemetry_first_then_events_the_broker_has(tmp_path: Path) -> None:
    hold = Hold(max_bytes=1000)
    for n in range(1, 4):
        hold.add_event(HeldEvent(n, "t/alert", _event(n), b"e" * 200, 0.0))
    hold.event(1).delivered = 1.0
    hold.add_telemetry([("t/telemetry", b"t" * 150)] * 2, 0.0)
    assert hold.bytes == 900 and hold.dropped_telemetry == 0
    hold.add_telemetry([("t/telemetry", b"t" * 150)], 0.0)  # over: the oldest telemetry goes
    assert hold.dropped_telemetry == 1 and len(hold.events) == 3
    hold.add_event(HeldEvent(4, "t/alert", _event(4), b"e" * 500, 0.0))
    # no telemetry left to drop: the event the broker already has goes first ...
    assert hold.dropped_telemetry == 3 and [h.seq for h in hold.events] == [2, 3, 4]
    assert hold.counts()["dropped_events"] == 1 and hold.counts()["dropped_undelivered"] == 0
    hold.add_event(HeldEvent(5, "t/alert", _event(5), b"e" * 300, 0.0))
    # ... then the oldest nobody has, counted as lost
    assert [h.seq for h in hold.events] == [3, 4, 5] and hold.bytes == 1000
    assert hold.counts()["dropped_events"] == 2 and hold.counts()["dropped_undelivered"] == 1


def test_with_receipts_a_pubacked_event_waits_for_the_platform_and_is_resent(
        tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, receipts=True, receipt_timeout=3600.0)
    ob.add_telemetry([("t/telemetry", b'{"v":1}')])
    events = [ob.commit_events([("t/alert", _event(n))], [])[0] for n in (1, 2, 3)]
    for row in ob.peek(10):
        ob.ack(row)
    assert ob.peek(10) == [] and ob.depth() == {"events": 0, "telemetry": 0}  # telemetry left
    assert ob.unconfirmed()[0] == 3 and ob.alert_log()[0]["delivered_at"] is not None
    ob.close()
    ob = Outbox(path, receipts=True, receipt_timeout=3600.0)  # unconfirmed survives a restart
    assert ob.unconfirmed()[0] == 3 and ob.peek(10) == []
    ob.resend_unconfirmed()  # e.g. the broker came back without our session
    assert [r.seq for r in ob.peek(10)] == [1, 2, 3]
    # receipts of another history are ignored: a seq never assigned, or another event at seq 2
    assert ob.receipt(seq=7) == 0
    assert ob.receipt(seq=2, seq_event_id=_event(9)["event_id"]) == 0
    assert ob.receipt(seq=2, seq_event_id=events[1]["event_id"]) == 2
    assert ob.unconfirmed()[0] == 1 and [r.seq for r in ob.peek(10)] == [3]
    assert ob.receipt(event_ids=[events[2]["event_id"]]) == 1
    assert ob.unconfirmed() == (0, None) and ob.peek(10) == []
    log = ob.alert_log()
    assert all(e["confirmed_at"] for e in log)
    short = Outbox(tmp_path / "short.sqlite", receipts=True, receipt_timeout=0.0)
    short.commit_events([("t/alert", _event(1))], [])
    short.ack(short.peek(1)[0])
    assert [r.seq for r in short.peek(1)] == [1]  # the timeout passed: sent again


def test_receipts_and_pubacks_the_disk_refuses_wait_in_memory(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", receipts=True, receipt_timeout=3600.0)
    for n in (1, 2):
        ob.commit_events([("t/alert", _event(n))], [])
    pages = ob.db.execute("PRAGMA page_count").fetchone()[0]
    ob.db.execute("PRAGMA query_only=1")  # the database refuses every write
    ob.ack(ob.peek(1)[0])
    assert [r.seq for r in ob.peek(10)] == [2]  # seq 1 is sent, only in memory so far
    ob.receipt(seq=1)
    ob.commit_events([("t/alert", _event(3))], [])
    ob.ack(ob.peek(10)[1])  # seq 3, held in memory, sent directly
    assert ob.unconfirmed()[0] == 1 and ob.guard.state == "read_only"
    ob.db.execute("PRAGMA query_only=0")
    assert ob.flush() and ob.db.execute("PRAGMA page_count").fetchone()[0] >= pages
    log = {e["seq"]: e for e in ob.alert_log()}
    assert log[1]["confirmed_at"] and log[3]["delivered_at"] and not log[2]["delivered_at"]
    assert [r.seq for r in ob.peek(10)] == [2] and ob.unconfirmed()[0] == 1


@pytest.mark.parametrize("step", [-86400.0, 6 * 3600.0], ids=["back_1d", "forward_6h"])
def test_an_unconfirmed_event_is_sent_again_on_time_through_a_clock_step(
        tmp_path: Path, monkeypatch, step: float) -> None:
    import time

    ob = Outbox(tmp_path / "o.sqlite", receipts=True, receipt_timeout=60.0)
    ob.commit_events([("t/alert", _event(1))], [])
    ob.commit_events([("t/alert", _event(2))], [])
    ob.ack(ob.peek(1)[0])  # seq 1 PUBACKed; its receipt never comes
    ob.db.execute("PRAGMA query_only=1")  # seq 2 is PUBACKed in memory only (a full disk)
    ob.ack(ob.peek(10)[0])
    real = time.time

    def wall(after: float) -> None:  # the wall clock, stepped, `after` s of real time on
        monkeypatch.setattr(time, "time", lambda: real() + step + after)

    wall(0.0)
    ob.clock_stepped(step)  # the daemon, when the clock counts the step
    wall(30.0)
    assert ob.peek(10) == []  # not sent again at once after a step forward ...
    wall(61.0)
    assert [r.seq for r in ob.peek(10)] == [1, 2]  # ... nor a day late after a step back
    monkeypatch.undo()
    ob.db.execute("PRAGMA query_only=0")
    ob.close()
