"""A Sparkplug B host takes the tailings pond from a second target with encoding = "sparkplug".

The gateway runs the rainstorm against the simulator with two targets on one real Mosquitto:
the city's MineWatch JSON (compact telemetry) and a plant's Sparkplug B host (group "Ponds",
side topic prefix "plant/v1"). The host reads every payload with the test's own protobuf wire
decoder, not the gateway's descriptor: NBIRTH with bdSeq and Node Control/Rebirth, a DBIRTH per
device with every point and its unit, quantity and quality, DDATA whose values are the city's to
the bit, seq without a gap from NBIRTH on, a rebirth when it asks for one, and at the stop the
NDEATH with the NBIRTH's bdSeq. The alerts come on the side topic, every one once in seq order.

With a Primary Host Application configured, the node is born only while that host's STATE says
it is online, holds everything meanwhile, and says NDEATH when the host goes offline.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.integration.test_uplink_durability import Site, first_arrivals
from tests.support.services import Mosquitto, MqttRecorder, free_port, require_binary
from tests.support.sparkplug_host import SparkplugHost

GROUP, EDGE, SITE = "Ponds", "gw01", "130825-TP001"
NODE = f"spBv1.0/{GROUP}/"


def _targets(cfg: Path, port: int, more: str = "") -> None:
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
{more}""", encoding="utf-8")


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


def _seq_runs(msgs: list[tuple[str, dict]]) -> None:
    """seq is 0 at each NBIRTH and runs on by one from there (NDEATH carries none)."""
    seq = None
    for t, d in msgs:
        kind = _kind(t)
        if kind in ("NDEATH", "NCMD"):
            assert "seq" not in d or kind == "NCMD"
            continue
        assert d["seq"] == (0 if kind == "NBIRTH" else (seq + 1) % 256), (t, d["seq"], seq)
        seq = d["seq"]


def _plant(tmp_path: Path, more: str = "") -> tuple[Mosquitto, SparkplugHost, MqttRecorder, Site]:
    """One broker, the plant's Sparkplug host, the city's recorder, and the rainstorm site with
    both targets (`more`: lines for the plant's target), above blue from the start."""
    binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
    broker = Mosquitto(binary, tmp_path / "broker", free_port())
    broker.start()
    host = SparkplugHost(broker.port, "plant/v1/#")
    city = MqttRecorder(broker.port, "minewatch/v1/#", receipts=False)
    site = Site(tmp_path, broker.port, scale=600.0, start_h=21.0)
    _targets(site.cfg, broker.port, more)
    return broker, host, city, site


def _close(gw, site: Site, host: SparkplugHost, city: MqttRecorder, broker: Mosquitto) -> None:
    """Stop what a test started, whatever state it stopped in (the broker last)."""
    if gw.poll() is None:
        gw.kill()
    site.close()
    host.close()
    city.close()
    broker.stop()


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_sparkplug_host_reads_births_and_data_and_gets_a_rebirth(tmp_path: Path) -> None:
    broker, host, city, site = _plant(tmp_path)
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
        _close(gw, site, host, city, broker)
    msgs = [(t, d) for t, d in host.snapshot() if t.startswith(NODE)]
    assert all(t.split("/")[3] == EDGE for t, _ in msgs)
    # the first word of the node is its birth; seq runs on without a gap, 0 at each NBIRTH
    assert _kind(msgs[0][0]) == "NBIRTH"
    _seq_runs(msgs)
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


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_node_with_a_primary_host_is_born_only_while_the_host_is_online(
        tmp_path: Path) -> None:
    """The plant's SCADA host ("Scada") is down when the gateway starts (its retained STATE says
    offline): the node is not born and sends nothing, while the city gets everything. The host
    comes back: births, then the held data (read while it was away) and the alerts. A stale
    STATE (older than the newest) changes nothing; the host going offline again gets the NDEATH
    and nothing more until it is back, when the node is born again with the same bdSeq and
    sends what it held meanwhile."""
    broker, host, city, site = _plant(tmp_path, 'sparkplug_primary_host = "Scada"\n')
    from gateway.config import load_site

    devices = {p.device for p in load_site(site.cfg).points}

    def sim_ms() -> int:
        return int((site.epoch + (time.time() - site.anchor) * site.scale) * 1000)

    def node(msgs) -> list[tuple[str, dict]]:
        return [(t, d) for t, d in msgs if t.startswith(NODE)]

    ms = int(time.time() * 1000)
    host.state("Scada", False, ms)  # the host's will, retained from before
    gw = site.gateway(until_h=60.0)
    try:
        # away: the city gets alerts and telemetry, the plant nothing at all
        assert city.subscribed.wait(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (city.on("alert")
                                                    and len(city.on("telemetry")) >= 5):
            time.sleep(0.2)
        assert city.on("alert") and len(city.on("telemetry")) >= 5, site.logs()
        assert node(host.snapshot()) == [], node(host.snapshot())[:3]
        assert not [t for t, _ in host.snapshot() if t.startswith("plant/v1/")]
        away_until = sim_ms()
        # back: births, then what was held, oldest first, and the side topic's alerts
        host.state("Scada", True, ms + 1000)
        assert host.wait(lambda msgs: _born_after(node(msgs), 0, devices)), site.logs()
        assert host.wait(lambda msgs: any(
            m["timestamp"] < away_until for _, m in _metrics(msgs, ("DDATA",)))), site.logs()
        assert host.wait(lambda msgs: any(t.endswith("/alert") for t, _ in msgs
                                          if t.startswith("plant/v1/"))), site.logs()
        # a stale STATE (an old will delivered late) changes nothing
        host.state("Scada", False, ms + 500)
        time.sleep(2.0)
        assert "NDEATH" not in [_kind(t) for t, _ in node(host.snapshot())], site.logs()
        # offline again: NDEATH, then silence on the node's topics
        host.state("Scada", False, ms + 2000)
        assert host.wait(lambda msgs: any(_kind(t) == "NDEATH" for t, _ in node(msgs))), \
            site.logs()
        gone = sim_ms()
        time.sleep(3.0)  # half an hour of the site's time
        dead = len(node(host.snapshot()))
        assert _kind(node(host.snapshot())[dead - 1][0]) == "NDEATH", node(host.snapshot())[-3:]
        # back again: born again, the same bdSeq, and the readings of the silence arrive
        host.state("Scada", True, ms + 3000)
        assert host.wait(lambda msgs: _born_after(node(msgs), dead, devices)), site.logs()
        assert host.wait(lambda msgs: any(
            gone <= m["timestamp"] for _, m in _metrics(node(msgs)[dead:], ("DDATA",)))), \
            site.logs()
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(timeout=60) == 0, site.logs()
    finally:
        _close(gw, site, host, city, broker)
    msgs = node(host.snapshot())
    kinds = [_kind(t) for t, _ in msgs]
    assert kinds[0] == "NBIRTH" and kinds.count("NBIRTH") == 2, kinds[:5]
    assert kinds.count("NDEATH") == 2 and kinds[-1] == "NDEATH"  # the host's, and the stop's
    first_death = kinds.index("NDEATH")
    assert kinds[first_death + 1] == "NBIRTH"  # nothing between the NDEATH and the rebirth
    _seq_runs(msgs)
    bdseq = {m["value"] for t, m in _metrics(msgs, ("NBIRTH", "NDEATH")) if m["name"] == "bdSeq"}
    assert len(bdseq) == 1  # one connection throughout: one bdSeq
    log = "".join(p.read_text() for p in tmp_path.glob("gateway-*.log"))
    assert log.count('"sparkplug_host_online"') == 2 and log.count('"sparkplug_host_offline"') == 1
