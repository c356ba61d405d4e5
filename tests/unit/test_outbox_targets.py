"""Several uplink targets over one outbox: each its own place (PUBACKs out of order inside a
window, receipts of its own platform, results for one target only), a row leaving only when every
target has it, the cap and a full disk as before, and an outbox written before targets existed
opening and draining."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gateway.outbox import Outbox, Target

ROOT = Path(__file__).resolve().parent.parent.parent
CITY, PROVINCE = Target("city"), Target("province")


def _event(n: int) -> dict:
    return {"event_id": f"00000000-0000-0000-0000-{n:012d}", "alert_id": "a", "kind": "safety",
            "state": "raised", "level": "blue", "point": "WL-01", "observed_at": 1000 * n}


def _seqs(rows) -> list:
    return [r.seq if r.seq is not None else json.loads(r.payload)["n"] for r in rows]


def _fill(ob: Outbox, events: int = 3, telemetry: int = 2) -> None:
    for n in range(1, events + 1):
        ob.commit_events([("t/alert", _event(n))], [])
    ob.add_telemetry([("t/telemetry", json.dumps({"n": 100 + i}).encode())
                      for i in range(telemetry)])


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM outbox").fetchone()[0]


def test_a_row_leaves_only_when_every_target_has_it(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, targets=[CITY, PROVINCE])
    _fill(ob)
    for r in ob.peek(10, "city"):
        ob.ack(r, "city")
    assert ob.peek(10, "city") == [] and ob.depth("city") == {"events": 0, "telemetry": 0}
    assert _seqs(ob.peek(10, "province")) == [1, 2, 3, 100, 101]
    assert ob.depth("province") == {"events": 3, "telemetry": 2} == ob.depth()  # the most
    assert _rows(path) == 5  # the province has nothing yet: nothing left
    assert all(e["delivered_at"] is None for e in ob.alert_log())  # not every target has them
    ob.close()
    ob = Outbox(path, targets=[CITY, PROVINCE])  # a restart: each keeps its place
    assert ob.peek(10, "city") == []
    rows = ob.peek(10, "province")
    ob.ack_many(rows[:2], "province")
    assert _rows(path) == 3 and ob.alert_log()[0]["delivered_at"] is not None
    ob.ack_many(rows[2:], "province")
    assert _rows(path) == 0 and ob.depth() == {"events": 0, "telemetry": 0}
    assert all(e["delivered_at"] for e in ob.alert_log())


def test_pubacks_out_of_order_in_a_window_are_kept_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, targets=[CITY])
    _fill(ob, events=4, telemetry=3)
    rows = ob.peek(10, "city")
    by_seq = {_seqs([r])[0]: r for r in rows}
    ob.ack_many([by_seq[2], by_seq[4], by_seq[101], by_seq[102]], "city")
    assert _seqs(ob.peek(10, "city")) == [1, 3, 100]  # never sent twice to the same target
    ob.close()
    ob = Outbox(path, targets=[CITY])
    assert _seqs(ob.peek(10, "city")) == [1, 3, 100]
    assert ob.depth("city") == {"events": 2, "telemetry": 1}
    ob.ack_many(ob.peek(10, "city"), "city")
    assert _rows(path) == 0 and ob.peek(10, "city") == []
    with sqlite3.connect(path) as db:  # the cursor passed every row: nothing is left ahead
        assert db.execute("SELECT count(*) FROM ahead").fetchone()[0] == 0


def test_each_platform_confirms_for_its_own_target(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    city = Target("city", receipts=True, receipt_timeout=3600.0)
    ob = Outbox(path, targets=[city, PROVINCE])
    events = [ob.commit_events([("t/alert", _event(n))], [])[0] for n in (1, 2)]
    for name in ("city", "province"):
        ob.ack_many(ob.peek(10, name), name)
    assert ob.unconfirmed("city")[0] == 2 and _rows(path) == 2  # waiting for the city's receipt
    assert ob.peek(10, "city") == [] and ob.peek(10, "province") == []
    ob.resend_unconfirmed("city")
    assert [r.seq for r in ob.peek(10, "city")] == [1, 2] and ob.peek(10, "province") == []
    assert ob.receipt(seq=1, seq_event_id=events[0]["event_id"], target="city") == 1
    assert _rows(path) == 1 and ob.unconfirmed() == (1, ob.unconfirmed("city")[1])
    log = {e["seq"]: e for e in ob.alert_log()}
    assert log[1]["confirmed_at"] and not log[2]["confirmed_at"]


def test_receipts_switched_off_let_go_what_waited_for_them(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, targets=[Target("city", receipts=True, receipt_timeout=3600.0)])
    _fill(ob, events=2, telemetry=0)
    ob.ack_many(ob.peek(10, "city"), "city")
    assert _rows(path) == 2  # PUBACKed, waiting for a receipt that never comes
    ob.close()
    ob = Outbox(path, targets=[CITY])  # the same target, receipts off
    assert _rows(path) == 0 and ob.peek(10, "city") == []
    assert ob.depth("city") == {"events": 0, "telemetry": 0}
    ob.close()
    ob = Outbox(path, targets=[Target("city", receipts=True)])  # and on again: nothing waits
    assert ob.unconfirmed("city") == (0, None) and ob.peek(10, "city") == []


def test_a_stored_receipt_confirms_only_what_the_target_sent(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", targets=[Target("city", receipts=True,
                                                       receipt_timeout=3600.0)])
    _fill(ob, events=3, telemetry=0)
    ob.ack(ob.peek(1, "city")[0], "city")  # seq 1 PUBACKed; 2 and 3 never sent
    assert ob.receipt(seq=3, target="city", stored=True) == 1  # a retained one, of any age
    assert [r.seq for r in ob.peek(10, "city")] == [2, 3]  # still to be sent
    assert [e["seq"] for e in ob.alert_log() if e["confirmed_at"]] == [1]
    assert ob.receipt(seq=3, target="city") == 2  # a live one: the platform has them


def test_a_target_added_later_gets_the_backlog_and_confirms_by_event_ids(
        tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, targets=[CITY])
    _fill(ob, events=2, telemetry=0)
    ob.ack_many(ob.peek(10, "city"), "city")  # seq 1 and 2 delivered and gone
    ob.close()
    province = Target("province", receipts=True, receipt_timeout=3600.0)
    ob = Outbox(path, targets=[CITY, province])  # the province joins at a restart
    events = [ob.commit_events([("t/alert", _event(n))], [])[0] for n in (3, 4)]
    ob.ack_many(ob.peek(10, "city"), "city")
    rows = ob.peek(10, "province")
    assert [r.seq for r in rows] == [3, 4]  # from what the outbox holds, not from seq 1
    ob.ack_many(rows, "province")
    assert ob.receipt(seq=0, target="province") == 0  # it holds nothing from seq 1 on
    assert ob.unconfirmed("province")[0] == 2
    assert ob.receipt(seq=0, event_ids=[e["event_id"] for e in events], target="province") == 2
    assert _rows(path) == 0 and all(e["confirmed_at"] for e in ob.alert_log() if e["seq"] > 2)


def test_a_result_goes_only_to_the_target_the_commands_come_from(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, targets=[CITY, PROVINCE])
    ob.results_target = "city"
    ob.add_results([("t/cmd_result", b'{"n": 7}', b"corr")])
    ob.commit_events([("t/alert", _event(1))], [])
    assert _seqs(ob.peek(10, "province")) == [1]
    (result, event) = ob.peek(10, "city")
    assert result.correlation == b"corr" and result.target == "city" and event.seq == 1
    ob.ack(event, "province")
    ob.ack_many([result, event], "city")
    assert _rows(path) == 0


def test_the_cap_still_drops_the_oldest_telemetry_with_two_targets(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, max_bytes=16 * 1024, targets=[CITY, PROVINCE])
    ob.commit_events([("t/alert", _event(1))], [])
    pad = "x" * 900
    for i in range(40):
        ob.add_telemetry([("t/telemetry", json.dumps({"n": i, "pad": pad}).encode())])
        if i == 5:  # the city takes what there is, the province is away
            ob.ack_many(ob.peek(100, "city"), "city")
    assert ob.dropped_telemetry > 0 and ob.depth("province")["events"] == 1
    kept = _seqs(ob.peek(100, "province"))
    assert kept[0] == 1 and kept[1:] == list(range(40 - len(kept) + 1, 40))  # the newest
    assert _seqs(ob.peek(100, "city"))[0] == kept[1]  # what the city has not sent yet
    for name in ("city", "province"):
        ob.ack_many(ob.peek(100, name), name)
    assert _rows(path) == 0


def test_on_a_full_disk_a_target_keeps_what_it_sent_from_memory(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, targets=[CITY, PROVINCE])
    ob.db.execute("PRAGMA query_only=1")  # the database refuses every write
    for n in (1, 2, 3):
        ob.commit_events([("t/alert", _event(n))], [])
    ob.add_telemetry([("t/telemetry", b'{"n": 100}')])
    assert ob.hold.counts()["held_events"] == 3
    rows = ob.peek(10, "city")
    assert [r.held for r in rows] == [True] * 4
    ob.ack_many(rows[:2] + rows[3:], "city")  # seq 1, 2 and the telemetry, from memory
    assert _seqs(ob.peek(10, "city")) == [3]
    ob.ack(ob.peek(10, "province")[0], "province")  # seq 1
    ob.db.execute("PRAGMA query_only=0")
    assert ob.flush()
    assert _seqs(ob.peek(10, "city")) == [3]  # committed now, and still not sent twice
    assert _seqs(ob.peek(10, "province")) == [2, 3, 100]
    log = {e["seq"]: e for e in ob.alert_log()}
    assert log[1]["delivered_at"] and not log[2]["delivered_at"]
    for name in ("city", "province"):
        ob.ack_many(ob.peek(10, name), name)
    assert _rows(path) == 0


def test_an_outbox_written_before_targets_opens_and_drains(tmp_path: Path) -> None:
    """The file of `tests/support/outbox_before_targets.sql`: seq 1 and 2 PUBACKed and waiting
    for the platform's receipt, seq 3 and 4 and three telemetry messages not sent."""
    path = tmp_path / "outbox.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript((ROOT / "tests/support/outbox_before_targets.sql").read_text())
    first = Target("platform", receipts=True, receipt_timeout=1e9)
    ob = Outbox(path, targets=[first, PROVINCE])
    assert ob.last_seq() == 4
    assert _seqs(ob.peek(10, "platform")) == [3, 4, 0, 1, 2]  # 1 and 2 wait for a receipt
    assert ob.unconfirmed("platform")[0] == 2
    assert _seqs(ob.peek(10, "province")) == [1, 2, 3, 4, 0, 1, 2]  # a new target: all of it
    for name in ("platform", "province"):
        ob.ack_many(ob.peek(10, name), name)
    assert _rows(path) == 4  # every event waits for the first target's platform
    (seq4,) = [e for e in ob.alert_log() if e["seq"] == 4]
    assert ob.receipt(seq=4, seq_event_id=seq4["event_id"], target="platform") == 4
    assert _rows(path) == 0 and all(e["confirmed_at"] for e in ob.alert_log())
    ob.close()
    ob = Outbox(path, targets=[PROVINCE])  # the first target removed from the config
    assert ob.peek(10, "province") == [] and _rows(path) == 0
    with sqlite3.connect(path) as db:
        assert {r[0] for r in db.execute("SELECT target FROM cursors")} == {"province"}


def test_a_target_no_longer_configured_holds_nothing_back(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, targets=[CITY, PROVINCE])
    _fill(ob)
    ob.ack_many(ob.peek(10, "city"), "city")
    ob.close()
    assert _rows(path) == 5
    ob = Outbox(path, targets=[CITY])  # the province's broker was taken out of the file
    assert _rows(path) == 0 and ob.peek(10, "city") == []
