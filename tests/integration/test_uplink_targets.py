"""Two northbound targets, one down for a while: both get every event exactly once, in seq order.

The city's platform (broker A, receipts on) and the province's system (broker B, its own prefix,
no receipts) take the same gateway's events from one outbox, each at its own pace. Broker B is
stopped through the storm's escalation and started again: the city gets every alert as it
happens, the province gets what it missed once B is back, and neither sees an event twice or
out of order. The heartbeat shows each target's connection and backlog meanwhile, and the outbox
keeps every event until both have it. The province reads the full JSON telemetry, the city the
compact default: each gets its own encoding from the one outbox.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from tests.integration.test_uplink_durability import Site, wait_until
from tests.support.services import (
    Mosquitto,
    MqttRecorder,
    free_port,
    require_binary,
)
from tests.support.sites import ROOT

HEALTH = json.loads((ROOT / "config" / "schema" / "health.schema.json").read_text())


def _two_targets(cfg: Path, city: int, province: int) -> None:
    text = re.sub(r"(?ms)^\[uplink\.mqtt\].*?(?=^\[|\Z)", "", cfg.read_text(encoding="utf-8"))
    cfg.write_text(text + f"""
[[uplink.mqtt]]
name = "city"
host = "127.0.0.1"
port = {city}
receipts = true
reconnect_max = "2s"

[[uplink.mqtt]]
name = "province"
host = "127.0.0.1"
port = {province}
prefix = "province/v1"
reconnect_max = "2s"
encoding = "json"
""", encoding="utf-8")


def _events(messages: list[tuple[str, dict, bool]]) -> list[dict]:
    return [m for t, m, _ in messages if t.rpartition("/")[2] in ("alert", "fault")]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_two_targets_one_down_for_a_while_both_get_every_event_once_in_order(
        tmp_path: Path) -> None:
    binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
    a = Mosquitto(binary, tmp_path / "broker-a", free_port(), persistent=True)
    b = Mosquitto(binary, tmp_path / "broker-b", free_port(), persistent=True)
    a.start()
    b.start()
    site = Site(tmp_path, a.port, scale=3000.0, start_h=17.0)
    _two_targets(site.cfg, a.port, b.port)
    city = MqttRecorder(a.port, "minewatch/v1/#")
    province = MqttRecorder(b.port, "province/v1/#")  # its session outlives B's restart
    gw = site.gateway(until_h=46.0)
    try:
        wait_until(site.real(21.0))  # after blue (about 20.5 h)
        b.stop()
        before_outage = len(province.messages)
        wait_until(site.real(33.0))  # yellow and orange are raised while B is down
        b.start()
        assert gw.wait(timeout=150) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        city.close()
        province.close()
        a.stop()
        b.stop()
    committed = site.committed()
    assert [(c["state"], c["level"]) for c in committed][:4] == [
        ("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange"),
        ("escalated", "red")]
    seqs = list(range(1, len(committed) + 1))
    for platform in (city, province):
        events = _events(platform.messages)  # in arrival order, alert and fault topics alike
        assert [m["seq"] for m in events] == seqs  # every event, once, in seq order
        assert Counter(m["event_id"] for m in events) == Counter(
            c["event_id"] for c in committed)
    # the province's missed events came after B was back
    late = _events(province.messages[before_outage:])
    assert [(m["state"], m["level"]) for m in late][:2] == [("escalated", "yellow"),
                                                           ("escalated", "orange")]
    assert all(t.startswith("province/v1/130825-TP001/gw01/") for t, _, _ in province.messages)
    assert all(c["delivered_at"] for c in committed)  # both targets have every event
    # the city's heartbeat said the province was away and what waited for it
    beats = city.on("health")
    for h in beats[::50]:
        jsonschema.validate(h, HEALTH)
    away = [u for h in beats for u in h["uplinks"]
            if u["name"] == "province" and not u["connected"]]
    assert away and max(u["events"] for u in away) >= 2
    assert all(u["connected"] for h in beats for u in h["uplinks"] if u["name"] == "city")
    # one outbox, two encodings: the city its compact default, the province the full JSON
    assert city.telemetry_wire and province.telemetry_wire
    assert {json.loads(p)["schema"] for p in city.telemetry_wire} == {"minewatch/telemetry/2"}
    assert {json.loads(p)["schema"] for p in province.telemetry_wire} == {"minewatch/telemetry/1"}
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0
        assert {r[0] for r in db.execute("SELECT target FROM cursors")} == {"city", "province"}
