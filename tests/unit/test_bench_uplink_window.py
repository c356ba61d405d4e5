"""The uplink window benchmark's pure pieces (benchmarks/uplink_window.py): the backlog's order,
the windows compared, and the figures over max_inflight=1's. The benchmark itself runs in
`make bench` against a real Mosquitto."""

from __future__ import annotations

import pytest

from benchmarks.uplink_window import against_one, backlog_plan, default_windows


def test_backlog_spreads_every_event_among_the_telemetry() -> None:
    plan = backlog_plan(20, 300)
    assert len(plan) == 320 and sum(plan) == 20
    at = [i for i, e in enumerate(plan) if e]
    assert at[0] == 0 and {b - a for a, b in zip(at, at[1:], strict=False)} == {16}
    assert backlog_plan(0, 5) == [False] * 5
    assert backlog_plan(4, 0) == [True] * 4


def test_windows_compared_are_stop_and_wait_the_default_and_twenty() -> None:
    assert default_windows(20) == [1, 20]
    assert default_windows(1) == [1, 20]
    assert default_windows(50) == [1, 20, 50]


def test_figures_over_stop_and_wait() -> None:
    runs = [{"window": 1, "drain_per_s": 5.0, "drain_s": 64.0, "red_alert_wait_s": 3.6},
            {"window": 20, "drain_per_s": 80.0, "drain_s": 4.0, "red_alert_wait_s": 0.12},
            {"window": 8, "drain_per_s": 40.0, "drain_s": 8.0, "red_alert_wait_s": None}]
    twenty, eight = against_one(runs)
    assert twenty["window"] == 20 and twenty["drain_rate_x"] == pytest.approx(16.0)
    assert twenty["drain_time_x"] == pytest.approx(1 / 16)
    assert twenty["red_alert_wait_shorter_x"] == pytest.approx(30.0)
    assert eight["red_alert_wait_shorter_x"] is None  # a red alert never seen has no ratio
    assert against_one(runs[1:]) == []
