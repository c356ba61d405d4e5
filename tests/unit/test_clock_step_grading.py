"""A step of the wall clock changes no grade: the gateway's pipeline (real detectors, alert engine,
outbox, history store) grades a rising reservoir the same with and without a step in the middle,
reminds an unacknowledged alert on its schedule through one, counts its running time on both
sides of one, and a restart on a clock set back while it was down goes on from its checkpoint.
The clock is a fake standing in for the wall clock (its time and the steps it has seen); the
rest is the daemon's own code."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gateway.batch import Batch
from gateway.config import load_site

ROOT = Path(__file__).resolve().parent.parent.parent
T0 = 1_784_476_800.0
DAY = 86400.0
STEPS = [-DAY, -3600.0, 6 * 3600.0, 3 * 365 * DAY]
IDS = ["back_1d", "back_1h", "forward_6h", "forward_3y"]
COMMANDS = '\n[commands]\nenabled = true\nack_reminder = "15min"\n'


class SteppedClock:
    """What the daemon reads of the production clock: the time, and the steps seen so far."""

    scale = 1.0

    def __init__(self, t: float):
        self.t = t
        self.jumps = 0
        self.stepped = 0.0

    def now(self) -> float:
        return self.t

    def step(self, jump: float) -> None:
        self.t += jump
        self.jumps += 1
        self.stepped += jump


def _site(folder: Path, extra: str = ""):
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    # a hold time makes the threshold's debounce a matter of time, not only of samples
    text = text.replace('red = 1256.0 }', 'red = 1256.0, hold = "10min" }', 1)
    folder.mkdir()
    path = folder / "site.toml"
    path.write_text(text.replace('state_dir = "../../state/tailings_pond"',
                                 f'state_dir = "{folder / "state"}"') + extra, encoding="utf-8")
    return load_site(path)


def _gateway(cfg, clock):
    from gateway.daemon import Gateway

    return Gateway(cfg, clock)


def _level(k: int) -> float:
    """The reservoir at sample k (one a minute): 0.3 m/h up from 1252.0, blue at k = 200."""
    return 1252.0 + 0.3 * k / 60.0


def _feed(gw, clock, k: int) -> None:
    """Sample k of both devices at the clock's time, one minute after the previous."""
    gw.on_batch(Batch("radar_wl1", clock.t, np.array([0], np.int64), np.array([_level(k)]),
                      np.zeros(1, np.uint8)))
    gw.on_batch(Batch("vw_logger_a", clock.t, np.array([1, 2], np.int64),
                      np.array([13.0 - 0.001 * k, 14.0 - 0.0008 * k]), np.zeros(2, np.uint8)))


def _run(cfg, step: float, at: int, n: int = 360):
    clock = SteppedClock(T0)
    gw = _gateway(cfg, clock)
    raised: list[tuple[int, str, str]] = []
    for k in range(n):
        if k == at:
            clock.step(step)
        before = len(gw.outbox.alert_log())
        _feed(gw, clock, k)
        raised += [(k, e["state"], e["level"]) for e in gw.outbox.alert_log()[before:]]
        clock.t += 60.0
    state = {key: v for key, v in gw.detect._state().items() if key != "_clock/offset"}
    gw.outbox.close()
    return raised, state


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_detectors_grade_the_same_through_a_step(tmp_path: Path, step: float) -> None:
    reference, ref_state = _run(_site(tmp_path / "ref"), 0.0, 205)
    stepped, state = _run(_site(tmp_path / "stepped"), step, 205)
    # blue 10 minutes (the hold) after the crossing at k = 200, with the step in the middle
    assert reference == [(210, "raised", "blue")]
    assert stepped == reference
    # every detector (threshold, rate, step, stuck of the level; those of the piezometers)
    # holds the state it would hold without the step: no window emptied, no run held or closed
    assert ref_state.keys() == state.keys()
    for key in ref_state:
        np.testing.assert_array_equal(state[key], ref_state[key], err_msg=key)


def test_a_restart_on_a_clock_set_back_goes_on_from_the_checkpoint(tmp_path: Path) -> None:
    reference, ref_state = _run(_site(tmp_path / "ref"), 0.0, 180)
    cfg = _site(tmp_path / "restarted")
    clock = SteppedClock(T0)
    gw = _gateway(cfg, clock)
    for k in range(180):
        _feed(gw, clock, k)
        clock.t += 60.0
    gw.checkpoint()
    gw.outbox.close()
    # no RTC battery: the site computer boots a day behind, the gateway starts before NTP
    clock = SteppedClock(clock.t - DAY)
    gw = _gateway(cfg, clock)
    raised = []
    for k in range(180, 360):
        before = len(gw.outbox.alert_log())
        _feed(gw, clock, k)
        raised += [(k, e["state"], e["level"]) for e in gw.outbox.alert_log()[before:]]
        clock.t += 60.0
        if k == 240:
            clock.step(DAY)  # NTP: the detectors must not see this one either
    gw.outbox.close()
    # the first sample after the restart counts as if taken right after the checkpoint's last
    # (how long the gateway was down is unknown), so the run is one minute behind at most
    assert [(k, s, lv) for k, s, lv in raised] in ([(210, "raised", "blue")],
                                                    [(211, "raised", "blue")])
    assert gw.detect.offset == pytest.approx(60.0)  # detector time a minute behind wall time


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_reminders_keep_their_schedule_through_a_step(tmp_path: Path, step: float) -> None:
    cfg = _site(tmp_path / "site", COMMANDS)
    clock = SteppedClock(T0)
    gw = _gateway(cfg, clock)
    gw.on_batch(Batch("radar_wl1", T0, np.array([0], np.int64), np.array([1256.5]),
                      np.zeros(1, np.uint8)))  # red at once
    assert gw.outbox.alert_log()[-1]["level"] == "red"
    reminded = []
    for minute in range(1, 50):
        clock.t += 60.0
        if minute == 10:
            clock.step(step)
            gw.follow_clock()  # what the daemon's loop does when the clock counts a step
        reminded += [(minute, ev["reminder"]["unacknowledged_s"]) for ev in gw.acks.tick(clock.t)]
    gw.outbox.close()
    # 15 minutes after the raise, then 30 more (the interval doubles by default), each saying
    # how long the alert has really waited
    assert reminded == [(15, 900.0), (45, 2700.0)]


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_uptime_is_not_moved_by_a_step(tmp_path: Path, step: float) -> None:
    clock = SteppedClock(T0)
    gw = _gateway(_site(tmp_path / "site"), clock)
    clock.t += 120.0
    clock.step(step)
    gw.follow_clock()
    assert gw.status_document(clock.t)["uptime_s"] == 120.0  # not -3480 s after a step back
    gw.outbox.close()


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_the_history_store_counts_the_running_time_on_both_sides_of_a_step(
        tmp_path: Path, step: float) -> None:
    import sqlite3

    cfg = _site(tmp_path / "site")
    clock = SteppedClock(T0)
    gw = _gateway(cfg, clock)
    gw.history.start(clock.t)
    for k in range(20):
        if k == 10:
            clock.step(step)
        _feed(gw, clock, k)
        clock.t += 60.0
    gw.history.stop(clock.t)
    gw.outbox.close()
    with sqlite3.connect(cfg.gateway.state_dir / "history.sqlite") as db:
        runs = db.execute("SELECT started, stopped FROM runs ORDER BY started").fetchall()
    # ten minutes on each side, as the monthly report's running and online time count them
    # (one run stopped before it started would count nothing)
    assert sorted(b - a for a, b in runs) == [600.0, 600.0]


def test_the_heartbeat_says_the_clock_was_stepped(tmp_path: Path) -> None:
    """After a step back an event's observed_at can run back; the heartbeat tells the platform
    why (how many steps, their sum), and says nothing while the clock never stepped."""
    schema = json.loads((ROOT / "config" / "schema" / "health.schema.json").read_text())
    clock = SteppedClock(T0)
    gw = _gateway(_site(tmp_path / "site"), clock)
    _feed(gw, clock, 0)
    quiet = gw.health(clock.now())
    assert "clock" not in quiet
    clock.step(-DAY)
    _feed(gw, clock, 1)
    stepped = gw.health(clock.now())
    assert stepped["clock"] == {"steps": 1, "stepped_s": -DAY}
    assert stepped["uptime_s"] == quiet["uptime_s"]  # the uptime does not step
    for doc in (quiet, stepped):
        jsonschema.validate(doc, schema)
    gw.outbox.close()
