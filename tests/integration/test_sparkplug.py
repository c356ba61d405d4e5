"""A Sparkplug B host takes the tailings pond from a second target with encoding = "sparkplug".

The gateway runs the rainstorm against the simulator with two targets on one real Mosquitto:
the city's MineWatch JSON (compact telemetry) and a plant's Sparkplug B host (group "Ponds",
side topic prefix "plant/v1"). The host reads every payload with the test's own protobuf wire
decoder, not the gateway's descriptor: NBIRTH with bdSeq and Node Control/Rebirth, a DBIRTH per
device with every point and its unit, quantity and quality, DDATA whose values are the city's to
the bit, seq without a gap from NBIRTH on, a rebirth when it asks for one, and at the stop the
NDEATH with the NBIRTH's bdSeq. The alerts come on the side topic, every one once in seq order.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from tests.integration.test_uplink_durability import Site, first_arrivals
from tests.support.services import Mosquitto, MqttRecorder, free_port, require_binary
from tests.support.sparkplug_host import SparkplugHost

GROUP, EDGE, SITE = "Ponds", "gw01", "130825-TP001"
NODE = f"spBv1.0/{GROUP}/"


def _targets(cfg: Path, port: int) -> None:
    text = re.sub(r"(?ms)^\[uplink\.mqtt\].*?(?=^\[|\Z)", "", cfg.read_text(encoding="utf-8"))
    cfg.write_text(text + f"""
[[uplink.mqtt]]
name = "city"
host = "127.0.0.1"
port = {port}
reconnect_max = "2s"

[[uplink.mqtt]]
name = "plant"
host = "127.0.0.1"
port = {port}
prefix = "plant/v1"
encoding = "sparkplug"
sparkplug_group = "{GROUP}"
reconnect_max = "2s"
""", encoding="utf-8")


def _kind(topic: str) -> str:
    return topic.split("/")[2]


def _metrics(messages, kinds: tuple[str, ...]) -> list[tuple[str, dict]]:
    return [(t, m) for t, d in messages if t.startswith(NODE) and _kind(t) in kinds
            for m in d["metrics"]]


def _born_after(messages, start: int, devices: set[str]) -> bool:
    """An NBIRTH at or after `start`, then a DBIRTH of every device."""
    later = messages[start:]
    births = [i for i, (t, _) in enumerate(later) if t == f"{NODE}NBIRTH/{EDGE}"]
    if not births:
        return False
    seen = {t.rpartition("/")[2] for t, _ in later[births[0]:] if _kind(t) == "DBIRTH"}
    return devices <= seen


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_sparkplug_host_reads_births_and_data_and_gets_a_rebirth(tmp_path: Path) -> None:
    binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
    broker = Mosquitto(binary, tmp_path / "broker", free_port())
    broker.start()
    host = SparkplugHost(broker.port, "plant/v1/#")
    city = MqttRecorder(broker.port, "minewatch/v1/#", receipts=False)
    site = Site(tmp_path, broker.port, scale=600.0, start_h=21.0)  # above blue from the start
    _targets(site.cfg, broker.port)
    from gateway.config import load_site

    cfg = load_site(site.cfg)
    points = {p.name: p for p in cfg.points}
    devices = {p.device for p in cfg.points}
    gw = site.gateway(until_h=60.0)  # stopped by SIGTERM below, when the host has seen it all
    try:
        def every_value(msgs) -> bool:
            got = {m["name"] for _, m in _metrics(msgs, ("DDATA",)) if m["value"] is not None}
            return _born_after(msgs, 0, devices) and got == set(points)

        assert host.wait(every_value), site.logs()
        asked = len(host.snapshot())
        host.rebirth(GROUP, EDGE)
        assert host.wait(lambda msgs: _born_after(msgs, asked, devices)), site.logs()
        assert host.wait(lambda msgs: any(t.endswith("/alert") for t, _ in msgs)), site.logs()
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(timeout=60) == 0, site.logs()
        assert host.wait(lambda msgs: any(_kind(t) == "NDEATH" for t, _ in msgs
                                          if t.startswith(NODE))), site.logs()
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        host.close()
        city.close()
        broker.stop()
    msgs = [(t, d) for t, d in host.snapshot() if t.startswith(NODE)]
    assert all(t.split("/")[3] == EDGE for t, _ in msgs)
    # the first word of the node is its birth; seq runs on without a gap, 0 at each NBIRTH
    assert _kind(msgs[0][0]) == "NBIRTH"
    seq = None
    for t, d in msgs:
        kind = _kind(t)
        if kind in ("NDEATH", "NCMD"):
            assert "seq" not in d or kind == "NCMD"
            continue
        assert d["seq"] == (0 if kind == "NBIRTH" else (seq + 1) % 256), (t, d["seq"], seq)
        seq = d["seq"]
    # NBIRTHs (the first and the rebirth's) and the NDEATH carry the same bdSeq
    bdseq = {m["value"] for t, m in _metrics(msgs, ("NBIRTH", "NDEATH")) if m["name"] == "bdSeq"}
    assert len(bdseq) == 1
    nbirths = [d for t, d in msgs if _kind(t) == "NBIRTH"]
    assert len(nbirths) == 2
    for d in nbirths:
        rebirth = [m for m in d["metrics"] if m["name"] == "Node Control/Rebirth"]
        assert rebirth and rebirth[0]["datatype"] == 11 and rebirth[0]["value"] is False
    saved = json.loads((tmp_path / "state" / "sparkplug-plant.json").read_text())
    assert saved["next_bdseq"] == (bdseq.pop() + 1) % 256  # a restart goes on from there
    # each DBIRTH names every point of its device with its properties
    for t, d in msgs:
        if _kind(t) == "DBIRTH":
            device = t.rpartition("/")[2]
            assert {m["name"] for m in d["metrics"]} == {
                n for n, p in points.items() if p.device == device}
            for m in d["metrics"]:
                p = points[m["name"]]
                assert m["datatype"] == 10
                assert m["properties"]["unit"] == p.unit
                assert m["properties"]["quantity"] == p.quantity
                assert m["properties"]["quality"] in range(6)
    # every DDATA value is the city's for the same point and read time, every point among them
    told = {(p["point"], p["observed_at"]): p["value"] for t, doc, _ in city.messages
            if t.endswith("/telemetry") and doc["kind"] != "stats" for p in doc["points"]}
    both = [(m["name"], m["timestamp"], m["value"]) for _, m in _metrics(msgs, ("DDATA",))
            if (m["name"], m["timestamp"]) in told]
    assert {name for name, _, _ in both} == set(points)
    assert all(told[(name, ts)] == value for name, ts, value in both)
    # alerts and faults: MineWatch JSON on the side topic, every one once, in seq order
    side = [d for t, d in host.snapshot()
            if t.startswith(f"plant/v1/{SITE}/{EDGE}/") and t.rpartition("/")[2] in
            ("alert", "fault")]
    committed = site.committed()
    assert committed and [m["seq"] for m in first_arrivals(side)] == [
        c["seq"] for c in committed]
    assert {m["event_id"] for m in side} == {c["event_id"] for c in committed}
