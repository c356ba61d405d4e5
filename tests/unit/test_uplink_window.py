"""The uplink window's rules (gateway/uplink/window.py): events first and in order, telemetry
never in the last slot, and after a refused event one event at a time, with the events accepted
behind it sent again after it."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.uplink.window import Window


@dataclass(frozen=True)
class Row:
    priority: int
    n: int

    @property
    def key(self) -> tuple:
        return (self.priority, self.n)


def ev(n: int) -> Row:
    return Row(0, n)


def tm(n: int) -> Row:
    return Row(1, n)


def send(w: Window, rows: list[Row], now: float = 0.0) -> list[int]:
    chosen = w.choose(rows, now)
    for r in chosen:
        w.sent(r, now)
    return [r.n for r in chosen]


def test_events_fill_the_window_and_telemetry_leaves_a_slot_for_a_new_alert() -> None:
    w = Window(4)
    assert send(w, [ev(1), ev(2), tm(10), tm(11), tm(12), tm(13)]) == [1, 2, 10, 11]
    assert w.done(ev(1).key, None, 0.0) == (ev(1), True)
    assert w.done(ev(2).key, None, 0.0) == (ev(2), True)
    # telemetry takes 3 slots of 4 at most: the fourth is an alert's, at once
    assert send(w, [tm(12), tm(13), tm(14)]) == [12]
    assert send(w, [ev(3), tm(13)]) == [3]
    assert len(w.flights) == 4


def test_an_event_waiting_to_be_sent_holds_telemetry_back() -> None:
    w = Window(3)
    assert send(w, [ev(1), ev(2), ev(3), ev(4), tm(10)]) == [1, 2, 3]
    w.done(ev(1).key, None, 0.0)
    assert send(w, [ev(2), ev(3), ev(4), tm(10)]) == [4]  # the rows in flight come back too


def test_a_window_of_one_is_stop_and_wait() -> None:
    w = Window(1)
    assert send(w, [ev(1), ev(2)]) == [1]
    assert send(w, [ev(1), ev(2)]) == []
    w.done(ev(1).key, None, 0.0)
    assert send(w, [ev(2), tm(10)]) == [2]
    w.done(ev(2).key, None, 0.0)
    assert send(w, [tm(10), tm(11)]) == [10]


def test_after_a_refused_event_the_ones_behind_it_are_sent_again_after_it() -> None:
    w = Window(5, backoff_min=1.0, backoff_max=4.0)
    assert send(w, [ev(1), ev(2), ev(3), tm(10)]) == [1, 2, 3, 10]
    row, delivered = w.done(ev(1).key, "broker rejected the publish: Not authorized", 0.0)
    assert row == ev(1) and not delivered
    # the broker took 2 and 3 (they were on the wire already): they do not count
    assert w.done(ev(2).key, None, 0.1) == (ev(2), False)
    assert w.done(ev(3).key, None, 0.1) == (ev(3), False)
    assert w.done(tm(10).key, None, 0.1) == (tm(10), True)  # telemetry is not held to order
    assert send(w, [ev(1), ev(2), ev(3), tm(11)], now=0.5) == []  # backoff: nothing at all
    assert w.retry_in(0.5) == 0.5
    assert send(w, [ev(1), ev(2), ev(3), tm(11)], now=1.0) == [1]  # alone
    assert send(w, [ev(1), ev(2), ev(3), tm(11)], now=1.0) == []
    w.done(ev(1).key, "broker rejected the publish: Quota exceeded", 1.1)
    assert w.retry_in(1.1) == 2.0  # backoff doubles
    assert send(w, [ev(1), ev(2)], now=3.1) == [1]
    assert w.done(ev(1).key, None, 3.2) == (ev(1), True)
    assert send(w, [ev(2), ev(3), tm(11)], now=3.2) == [2, 3, 11]  # the window is open again


def test_a_refused_telemetry_message_holds_nothing_else_up() -> None:
    w = Window(4, backoff_min=1.0)
    assert send(w, [tm(10), tm(11)]) == [10, 11]
    w.done(tm(10).key, "broker rejected the publish: Payload format invalid", 0.0)
    assert send(w, [ev(1), tm(10), tm(12)], now=0.1) == [1]
    w.done(tm(11).key, None, 0.2)
    assert send(w, [tm(10)], now=1.0) == [10]


def test_pubacks_due_after_a_reconnect_and_overdue_ones_reported_once() -> None:
    w = Window(2)
    send(w, [ev(1), tm(10)], now=0.0)
    assert [f.row for f in w.overdue(11.0, 10.0)] == [ev(1), tm(10)]
    assert w.overdue(12.0, 10.0) == []
    w.reconnected(20.0)
    assert w.overdue(25.0, 10.0) == [] and len(w.overdue(31.0, 10.0)) == 2


def test_a_qos0_message_lost_unwritten_is_chosen_again_without_backoff() -> None:
    """Sparkplug's DDATA go at QoS 0: paho drops the ones not written when the connection
    ends and never reports them; the publisher releases their rows at the reconnect."""
    w = Window(3)
    assert send(w, [tm(10), tm(11)]) == [10, 11]
    w.release(tm(10).key)
    assert w.retry_in(0.0) is None and not w.busy(tm(10).key)
    assert send(w, [tm(10), tm(11), tm(12)]) == [10]  # 11 is still in flight; 2 of 3 for telemetry
    assert w.done(tm(10).key, None, 0.0) == (tm(10), True)
