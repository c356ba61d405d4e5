"""Acknowledgements and reminders over the real gateway pipeline (detectors, alert engine,
outbox): who acknowledged which alert when, reminders at growing intervals until then, and both
kept across a restart."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gateway.alerts.acknowledge import AckError, Acknowledgements
from gateway.alerts.encoder import with_sent_at
from gateway.batch import Batch
from gateway.clock import SimClock
from gateway.config import load_site

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "config" / "schema" / "event.schema.json").read_text())
T0 = 1_784_476_800.0
COMMANDS = """
[commands]
enabled = true
ack_reminder = "15min"
ack_reminder_growth = 2
ack_reminder_max = "2h"
"""


@pytest.fixture
def site(tmp_path: Path):
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text.replace('state_dir = "../../state/tailings_pond"',
                                 f'state_dir = "{tmp_path / "state"}"') + COMMANDS,
                    encoding="utf-8")
    return load_site(path)


def _gateway(site):
    from gateway.daemon import Gateway

    return Gateway(site, SimClock(T0, 1.0))


def _feed(gw, t: float, wl: float) -> None:
    gw.on_batch(Batch("radar_wl1", t, np.array([0], np.int64), np.array([wl]),
                      np.zeros(1, np.uint8)))


def _valid(ev: dict) -> None:
    """As the platform receives it: without the local log's delivery columns, with sent_at."""
    ev = {k: v for k, v in ev.items() if k not in ("delivered_at", "confirmed_at")}
    jsonschema.validate(json.loads(with_sent_at(json.dumps(ev).encode(), T0)), SCHEMA)


def test_reminders_grow_until_the_acknowledgement_and_stop_after_it(site) -> None:
    gw = _gateway(site)
    _feed(gw, T0, 1256.5)  # red at once
    red = gw.outbox.alert_log()[-1]
    assert (red["state"], red["level"]) == ("raised", "red")
    times = [T0 + s for s in range(0, 4 * 3600, 60)]
    reminders = [(t, ev) for t in times[:200] for ev in gw.acks.tick(t)]
    # 15 min, then 30, then 60, then capped at 2 h: 15, 45, 105, 225 minutes
    assert [round((t - T0) / 60) for t, _ in reminders] == [15, 45, 105]
    for k, (_, ev) in enumerate(reminders, start=1):
        _valid(ev)
        assert (ev["state"], ev["level"], ev["alert_id"]) == ("reminder", "red", red["alert_id"])
        assert ev["reminder"]["count"] == k and ev["point"] == "WL-01"
        assert ev["value"] == red["value"] and ev["threshold"] == red["threshold"]
        assert "无人确认" in ev["message"]["zh"] and "unacknowledged" in ev["message"]["en"]
    at = times[200]
    out = gw.acks.acknowledge(red["alert_id"], "张工", "on my way", at, "cmd-1")
    assert out["acknowledged"] and out["level"] == "red" and out["open"]
    ack = gw.outbox.alert_log()[-1]
    _valid(ack)
    assert (ack["state"], ack["level"], ack["alert_id"]) == ("acknowledged", "red",
                                                             red["alert_id"])
    assert ack["seq"] == reminders[-1][1]["seq"] + 1 and ack["observed_at"] == int(at * 1000)
    assert ack["ack"]["by"] == "张工" and ack["ack"]["note"] == "on my way"
    assert ack["ack"]["command_id"] == "cmd-1" and "张工" in ack["message"]["zh"]
    assert [ev for t in times[200:] for ev in gw.acks.tick(t + 3600)] == []
    # once is enough: the same level is not acknowledged twice
    again = gw.acks.acknowledge(red["alert_id"], "李工", "", at + 60)
    assert not again["acknowledged"] and again["already"]["by"] == "张工"
    assert gw.outbox.alert_log()[-1]["event_id"] == ack["event_id"]
    gw.outbox.close()


def test_an_escalation_past_the_acknowledged_level_is_chased_again(site) -> None:
    gw = _gateway(site)
    for k in range(3):
        _feed(gw, T0 + 600 * k, 1255.2)  # orange after the debounce
    orange = gw.outbox.alert_log()[-1]
    assert orange["level"] == "orange"
    gw.acks.tick(T0 + 1200)
    gw.acks.acknowledge(orange["alert_id"], "张工", "", T0 + 1300)
    assert gw.acks.tick(T0 + 1200 + 3600) == []
    _feed(gw, T0 + 5000, 1256.5)  # red: more than was acknowledged
    gw.acks.tick(T0 + 5000)
    reminders = gw.acks.tick(T0 + 5000 + 900)
    assert [(ev["state"], ev["level"]) for ev in reminders] == [("reminder", "red")]
    gw.outbox.close()


def test_a_restart_keeps_the_acknowledgements_and_the_reminder_schedule(site) -> None:
    gw = _gateway(site)
    _feed(gw, T0, 1256.5)
    alert_id = gw.outbox.alert_log()[-1]["alert_id"]
    gw.acks.tick(T0)
    assert len(gw.acks.tick(T0 + 900)) == 1
    gw.outbox.close()
    gw = _gateway(site)  # the same state directory: the engine continues the episode
    # the first reminder went out at +15 min: the second is due 30 min later, not 15 min after
    # the restart, and the count goes on
    assert gw.acks.tick(T0 + 900 + 1700) == []
    second = gw.acks.tick(T0 + 900 + 1800)
    assert [ev["reminder"]["count"] for ev in second] == [2]
    gw.acks.acknowledge(alert_id, "张工", "", T0 + 3000)
    gw.outbox.close()
    gw = _gateway(site)
    assert gw.acks.tick(T0 + 20000) == []
    assert gw.acks.status(alert_id) == {"level": "red"}
    gw.outbox.close()


def test_a_cleared_alert_can_be_acknowledged_and_an_unknown_one_cannot(site) -> None:
    gw = _gateway(site)
    _feed(gw, T0, 1256.5)
    alert_id = gw.outbox.alert_log()[-1]["alert_id"]
    for k in range(1, 5):
        _feed(gw, T0 + 600 * k, 1250.0)
    assert gw.outbox.alert_log()[-1]["state"] == "cleared"
    out = gw.acks.acknowledge(alert_id, "张工", "seen afterwards", T0 + 4000)
    assert out["acknowledged"] and not out["open"] and out["level"] == "none"
    ev = gw.outbox.alert_log()[-1]
    _valid(ev)
    assert (ev["state"], ev["level"], ev["grade_roman"]) == ("acknowledged", "none", None)
    with pytest.raises(AckError) as exc:
        gw.acks.acknowledge("0f5e2b7c-0000-4000-8000-000000000000", "张工", "", T0 + 4100)
    assert exc.value.code == "not_found"
    gw.outbox.close()


def test_no_reminders_when_they_are_off(site) -> None:
    from dataclasses import replace

    gw = _gateway(site)
    _feed(gw, T0, 1256.5)
    off = Acknowledgements(gw.engine, gw.outbox, replace(site.commands, ack_reminder=0.0))
    assert [ev for t in range(0, 86400, 600) for ev in off.tick(T0 + t)] == []
    gw.outbox.close()


def test_acknowledgements_and_reminders_go_to_the_influx_sink_too(tmp_path: Path) -> None:
    """With [storage.influx], the alert measurement holds an alert's whole story: raised,
    reminded (state 6), acknowledged (state 5); spooled for the database like every event."""
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    (tmp_path / "influx.token").write_text("t0ken\n", encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text.replace('state_dir = "../../state/tailings_pond"',
                                 f'state_dir = "{tmp_path / "state"}"') + COMMANDS
                    + '\n[storage.influx]\nurl = "http://127.0.0.1:8428"\norg = "mw"\n'
                      'bucket = "mw"\ntoken_file = "influx.token"\n', encoding="utf-8")
    gw = _gateway(load_site(path))
    assert gw.sink is not None
    _feed(gw, T0, 1256.5)  # red at once
    red = gw.outbox.alert_log()[-1]
    (reminder,) = gw.acks.tick(T0 + 15 * 60)
    gw.acks.acknowledge(red["alert_id"], "张工", "", T0 + 20 * 60)
    chunk = gw.sink.spool.peek(10_000)
    alert_lines = [x for x in chunk.body.decode().splitlines() if x.startswith("alert,")]
    states = [(int(x.split("seq=")[1].split("i")[0]), x.split("state=")[1].split("i")[0])
              for x in alert_lines if "point=WL-01" in x]
    assert (red["seq"], "1") in states  # raised
    assert (reminder["seq"], "6") in states
    assert (reminder["seq"] + 1, "5") in states  # acknowledged, the next seq
    gw.outbox.close()
