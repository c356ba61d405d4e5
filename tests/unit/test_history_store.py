"""The history store: windows kept (and merged across a restart), device states and runs,
retention and the cap, a disk that refuses writes, and `[history]` in the site config."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gateway.config import ConfigError
from gateway.history.sizing import ROW_BYTES, size_estimate
from gateway.history.store import HistoryStore, month_start
from gateway.report.source import ReportSource
from gateway.state_dir import StorageGuard
from tests.support.history import site_in

TZ = ZoneInfo("Asia/Shanghai")
T0 = 1_780_243_200.0  # 2026-06-01 00:00 +08:00
NAMES, QS, UNITS = ["A", "B"], ["water_level", "generic"], ["m", ""]


def _window(store: HistoryStore, start: float, a: float, b: float, count=(1, 1)) -> None:
    c = np.array(count, np.int64)
    v = np.array([a, b])
    store.add_window(start, NAMES, QS, UNITS, c, np.ones(2, np.int64), v, v, v * c,
                     np.zeros(2, np.uint8))


def test_windows_runs_and_device_states_are_kept(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite", 1 << 30, tz=TZ)
    store.run_started(T0)
    for k in range(3):
        _window(store, T0 + 300 * k, 10.0 + k, 5.0)
    store.device_online("d1", T0, True)
    store.device_online("d1", T0 + 400, False)
    store.run_seen(T0 + 900)
    store.flush()
    # the open window flushed at a stop and completed after the restart is one window
    _window(store, T0 + 900, 20.0, 5.0)
    store.run_stopped(T0 + 1000)
    store.close()
    store = HistoryStore(tmp_path / "h.sqlite", 1 << 30, tz=TZ)
    _window(store, T0 + 900, 30.0, 7.0, count=(2, 1))
    store.close()
    src = ReportSource(tmp_path / "h.sqlite", tmp_path / "no-outbox.sqlite")
    s = src.series("A", T0, T0 + 3600)
    assert list(s.start) == [T0, T0 + 300, T0 + 600, T0 + 900]
    assert (s.count[-1], s.min[-1], s.max[-1]) == (3, 20.0, 30.0)
    assert s.mean[-1] == pytest.approx((20.0 + 60.0) / 3)
    assert src.runs(T0, T0 + 3600) == [(T0, T0 + 1000)]
    assert src.device_states(T0 + 3600) == {"d1": [(T0, True), (T0 + 400, False)]}
    assert src.alert_rows(T0, T0 + 3600) == []  # no outbox yet: an empty log, not an error
    src.close()


def test_retention_keeps_thirteen_whole_months_and_the_cap_drops_the_oldest_day(
        tmp_path: Path, caplog) -> None:
    store = HistoryStore(tmp_path / "h.sqlite", 1 << 30, keep_months=13, tz=TZ)
    now = month_start(T0, TZ) + 5 * 86400  # 2026-06-06
    keep_from = month_start(now, TZ, back=13)  # 2025-05-01
    for t in (keep_from - 300, keep_from, now - 86400):
        _window(store, t, 1.0, 1.0)
    for t, online in ((keep_from - 900, True), (keep_from - 600, False), (keep_from + 60, True)):
        store.device_online("d1", t, online)
    store.prune(now)
    src = ReportSource(tmp_path / "h.sqlite", tmp_path / "none")
    assert list(src.series("A", 0, now).start) == [keep_from, now - 86400]
    # a device's last state before the cutoff stays: it holds into the oldest kept month
    assert src.device_states(now) == {"d1": [(keep_from - 600, False), (keep_from + 60, True)]}
    store._pruned_on = ""
    store.max_bytes = 1  # smaller than anything: the oldest day goes, logged
    with caplog.at_level(logging.ERROR, "minewatch.history"):
        store.prune(now)
    assert list(src.series("A", 0, now).start) == []
    assert store.pruned_for_cap >= 1 and "over its cap" in caplog.text
    src.close()
    store.close()


def test_a_row_costs_no_more_than_the_sizing_assumes(tmp_path: Path) -> None:
    n, windows = 200, 600
    names = [f"P{i}" for i in range(n)]
    store = HistoryStore(tmp_path / "h.sqlite", 1 << 40, tz=TZ)
    rng = np.random.default_rng(7)
    ones = np.ones(n, np.int64)
    for k in range(windows):  # every point every window, interleaved as the daemon writes them
        v = 1000.0 + rng.random(n)
        store.add_window(T0 + 300 * k, names, ["generic"] * n, ["m"] * n, ones, ones, v, v, v,
                         np.zeros(n, np.uint8))
    assert store.used_bytes() / (n * windows) <= ROW_BYTES
    store.close()


def test_a_disk_that_refuses_writes_holds_them_and_writes_them_later(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    guard = StorageGuard(tmp_path)
    store = HistoryStore(path, 1 << 30, guard=guard, tz=TZ)
    writable = store.db
    store.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    _window(store, T0, 1.0, 2.0)  # the write fails: kept, reported, never raised
    store.device_online("d1", T0, True)
    assert not store.flush() and store.pending() >= 2
    assert guard.kind == "read_only" and str(path) in guard.failing
    store.db.close()
    store.db = writable  # the disk takes writes again
    assert store.flush() and guard.kind is None
    store.close()
    src = ReportSource(path, tmp_path / "none")
    assert list(src.series("A", T0, T0 + 300).start) == [T0]
    src.close()


def test_while_the_reserve_is_out_the_store_waits(tmp_path: Path) -> None:
    guard = StorageGuard(tmp_path)
    store = HistoryStore(tmp_path / "h.sqlite", 1 << 30, guard=guard, tz=TZ)
    guard.released = True  # the alerts took the reserve's room: low-value writers wait
    _window(store, T0, 1.0, 2.0)
    assert store.pending() and not store.flush()
    guard.released = False
    assert store.flush()
    store.close()


def test_history_config_defaults_and_a_located_error_when_too_small(tmp_path: Path) -> None:
    cfg = site_in(tmp_path)
    h = cfg.history
    assert h.enabled and h.path == tmp_path / "state" / "history.sqlite" and h.keep_months == 13
    need = size_estimate([300.0] * 3, 13)  # three points whose abnormal period is 5 minutes
    assert need <= h.max_bytes <= 1.3 * need
    with pytest.raises(ConfigError) as exc:
        site_in(tmp_path / "small", {"# [history]": "[history]\nmax_bytes = 1000000\n"
                                     "keep_months = 12\n"})
    text = str(exc.value)
    assert "history.max_bytes: 1000000 bytes (1.0 MiB) cannot keep 13 months of this site's " \
           "3 point(s)" in text and "set max_bytes = " in text
    assert "history.keep_months: must be at least 13, got 12" in text
    lines = (tmp_path / "small" / "site.toml").read_text().splitlines()
    line = next(k for k, t in enumerate(lines, start=1) if t.startswith("max_bytes = 1000000"))
    assert f"site.toml:{line}: history.max_bytes" in text  # located in the file
    off = site_in(tmp_path / "off", {"# [history]": "[history]\nenabled = false\n"})
    assert not off.history.enabled


def test_a_store_that_failed_while_the_reserve_was_out_writes_again_once_there_is_room(
        tmp_path: Path) -> None:
    """The disk filled: the history store's write failed first, then an alert took the
    reserve's room. The store may not write while the reserve is out, so the reserve must come
    back when there is room although the store still counts as failing; otherwise neither ever
    happens and the episode never ends (found by tests/integration/test_disk_full.py)."""
    from gateway.clock import SimClock
    from gateway.daemon import Gateway

    gw = Gateway(site_in(tmp_path), SimClock(T0, 1.0))
    store, guard = gw.history.store, gw.storage
    assert guard.ensure_reserve()
    store.device_online("radar_wl1", T0, True)
    guard.failed(store.path, sqlite3.OperationalError("database or disk is full"))
    assert guard.release_reserve(gw.outbox.path)
    assert not store.flush() and str(store.path) in guard.failing
    gw._storage_tick(T0 + 1)  # this disk has room: the reserve is written back
    assert not guard.released
    assert store.flush() and guard.kind is None and not guard.failing  # recovered
    gw.outbox.close()
