"""The commands' ledger and results in the outbox: a result drains with the events, carries its
correlation data, leaves on the PUBACK, and survives a full disk (sent from memory, its ledger
entry kept, both written once the disk takes them)."""

from __future__ import annotations

from pathlib import Path

from gateway.outbox import Outbox
from gateway.outbox_commands import CommandEntry


def _refuse_growth(ob: Outbox) -> None:
    pages = ob.db.execute("PRAGMA page_count").fetchone()[0]
    ob.db.execute(f"PRAGMA max_page_count={pages}")


def _entry(req_id: str, result: bytes | None = None) -> CommandEntry:
    return CommandEntry(req_id, "measure", 1.0, "d" * 64, "张工", result)


def test_a_result_drains_before_telemetry_with_its_correlation_and_leaves_on_the_puback(
        tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", receipts=True)
    ob.add_telemetry([("t/telemetry", b'{"v":1}')])
    ob.command_received(_entry("r-1"), {"id": "r-1"})
    assert ob.unanswered_commands()[0].id == "r-1"
    ob.commit_result(_entry("r-1"), b'{"id":"r-1","ok":true}',
                     [("t/cmd_result", b'{"id":"r-1","ok":true}', b"corr"),
                      ("platform/replies", b'{"id":"r-1","ok":true}', b"corr")])
    rows = ob.peek(10)
    assert [(r.topic, r.correlation) for r in rows] == [
        ("t/cmd_result", b"corr"), ("platform/replies", b"corr"), ("t/telemetry", None)]
    for r in rows:
        ob.ack(r)
    assert ob.peek(10) == [] and ob.unconfirmed() == (0, None)  # no receipt to wait for
    assert ob.command_entry("r-1").result == b'{"id":"r-1","ok":true}'
    assert ob.unanswered_commands() == []
    ob.close()


def test_on_a_full_disk_a_result_is_sent_from_memory_and_its_id_still_answered_once(
        tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    _refuse_growth(ob)
    payload = b'{"id":"r-2","ok":true,"result":{"points":[]}}' + b" " * 4000
    ob.command_received(_entry("r-2"), {"id": "r-2"})
    ob.commit_result(_entry("r-2"), payload, [("t/cmd_result", payload, None)])
    assert ob.guard.state == "full"
    assert ob.command_entry("r-2").result == payload  # a redelivery finds its first answer
    (row,) = ob.peek(10)
    assert row.held and row.topic == "t/cmd_result" and row.seq is None
    ob.ack(row)
    assert ob.peek(10) == []
    ob.db.execute("PRAGMA max_page_count=1073741823")
    assert ob.flush() is True  # the disk takes the ledger entry now
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite")
    assert ob.command_entry("r-2").result == payload
    ob.close()


def test_a_result_not_yet_acknowledged_by_the_broker_is_there_after_a_restart(
        tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.commit_result(_entry("r-3"), b'{"id":"r-3"}', [("t/cmd_result", b'{"id":"r-3"}', b"c")])
    ob.close()  # the uplink was down: the broker never had it
    ob = Outbox(tmp_path / "o.sqlite")
    (row,) = ob.peek(10)
    assert (row.topic, row.payload, row.correlation) == ("t/cmd_result", b'{"id":"r-3"}', b"c")
    ob.close()
