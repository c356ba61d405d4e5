"""Live and replayed, the same events: the rainstorm served by the simulator and polled by the
gateway (through Mosquitto, on the simulated clock), and the same scenario exported by
`firmware-sim generate` and run through `minewatch replay`, give the same points, kinds, states
and levels, each observed within one poll period of its live twin, plus one period for each poll
the live gateway's scheduler reports it missed (a loaded CI machine at this time scale can miss
one; the scheduler's counter says so, and a later poll then reaches the same debounce later).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_sim.generate import write_csv
from firmware_sim.scenario import load_scenario
from gateway.replay import replay
from tests.support.services import MqttRecorder, free_port, play_scenario
from tests.support.sites import example_site

SCALE = 6000.0  # 10-minute polls -> 100 ms of real time: the clock's cap
PERIOD = 600.0


def _key(ev: dict) -> tuple:
    return (ev["point"], ev["kind"], ev["state"], ev["level"], ev["detector"])


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_live_and_replay_give_the_same_events(tmp_path: Path, mosquitto) -> None:
    scenario = load_scenario("rainstorm")
    sim_port = free_port()
    # a constant poll period (no faster abnormal period), so the replay's 10-minute export
    # samples the same instants; the points keep their default detector sets
    cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=mosquitto.port,
                       replace={'abnormal_period = "5min"': 'abnormal_period = "10min"'})
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    play_scenario(tmp_path, scenario, cfg, sim_port, recorder, SCALE, timeout=240)
    live = recorder.on("alert") + recorder.on("fault")
    live.sort(key=lambda e: e["seq"])

    export = tmp_path / "rainstorm.csv"
    write_csv("rainstorm", str(export), period="10min")
    events = tmp_path / "events.jsonl"
    replay(export, tmp_path / "graded.csv", config=cfg, events_path=events, tz="UTC")
    replayed = [json.loads(line) for line in events.read_text().splitlines()]

    assert live, (tmp_path / "gateway.log").read_text()[-3000:]
    assert [_key(e) for e in replayed] == [_key(e) for e in live]
    missed = sum(json.loads(line).get("missed_deadlines", 0)
                 for line in (tmp_path / "gateway.log").read_text().splitlines()
                 if '"device_stats"' in line)
    slack = (1 + missed) * PERIOD * 1000 + 60_000  # + a minute of real-time jitter at x6000
    for a, b in zip(live, replayed, strict=True):
        assert abs(a["observed_at"] - b["observed_at"]) <= slack, (_key(a), missed, a, b)
        assert (a["site"], a["gateway"]) == (b["site"], b["gateway"])
