"""A Sparkplug B target's session, its pure logic: topics, births with every point's metric and
its properties, seq over NBIRTH/DBIRTH/DDATA with its wrap, bdSeq per connect kept across a
restart, the NDEATH will, DDATA by device from an outbox row, statistics not sent, events on the
JSON side topic, and a rebirth on an NCMD. Payloads are read with the test's own wire decoder
(`tests/support/sparkplug_wire.py`), not the gateway's descriptor."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gateway.config import ConfigError, load_site
from gateway.encodings import Report, encoder
from gateway.outbox import PRIORITY_EVENT, PRIORITY_TELEMETRY, OutboxRow
from gateway.telemetry import catalog
from gateway.uplink.session import Sent
from gateway.uplink.sparkplug import SparkplugSession, bdseq_path
from tests.support.sparkplug_wire import decode_payload, encode_ncmd

ROOT = Path(__file__).resolve().parent.parent.parent
T0 = 1_784_476_800.0


class Info:
    rc = 0


class Wire:
    """What a session publishes, in order: (topic, decoded payload or JSON, qos, retain)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, int, bool]] = []

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool,
                 properties=None) -> Info:
        doc = json.loads(payload) if topic.startswith("minewatch/") else decode_payload(payload)
        self.sent.append((topic, doc, qos, retain))
        return Info()

    def take(self) -> list[tuple[str, dict, int, bool]]:
        out, self.sent = self.sent, []
        return out


def _cfg(tmp_path: Path, site: str = "tailings_pond", group: str | None = None):
    cfg = load_site(ROOT / "config" / "examples" / f"{site}.toml")
    m = replace(cfg.mqtt, encoding="sparkplug", sparkplug_group=group or cfg.site.code)
    return replace(cfg, mqtt=m, uplinks=(m,),
                   gateway=replace(cfg.gateway, state_dir=tmp_path))


def _session(cfg, now: float = T0) -> SparkplugSession:
    return SparkplugSession(cfg, cfg.mqtt, lambda: now)


def _row(cfg, report: Report, rid: int = 1) -> OutboxRow:
    payload = encoder("compact", catalog(cfg))(report)
    return OutboxRow(rid, PRIORITY_TELEMETRY, f"minewatch/v1/{cfg.site.code}/gw01/telemetry",
                     payload, 1, None, None, 0)


def _values(cfg, idx: list[int], values: list[float], quality: list[int] | None = None
            ) -> Report:
    n = len(idx)
    return Report("values", T0, np.array(idx, np.int64),
                  np.array(quality or [0] * n, np.uint8), value=np.array(values, float),
                  observed=np.full(n, T0 - 1.5))


def test_births_name_every_point_with_its_properties_and_seq_from_zero(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, group="Ponds")
    s = _session(cfg)
    wire = Wire()
    s.on_connect(wire)
    sent = wire.take()
    assert [t for t, *_ in sent] == ["spBv1.0/Ponds/NBIRTH/gw01",
                                     "spBv1.0/Ponds/DBIRTH/gw01/radar_wl1",
                                     "spBv1.0/Ponds/DBIRTH/gw01/vw_logger_a"]
    assert all(q == 0 and not r for _, _, q, r in sent)  # births: QoS 0, never retained
    assert [d["seq"] for _, d, _, _ in sent] == [0, 1, 2]
    nbirth = {m["name"]: m for m in sent[0][1]["metrics"]}
    assert nbirth["bdSeq"]["value"] == 0 and nbirth["bdSeq"]["datatype"] == 4
    assert nbirth["Node Control/Rebirth"] == {**nbirth["Node Control/Rebirth"],
                                              "value": False, "datatype": 11}
    born = {m["name"]: m for _, d, _, _ in sent[1:] for m in d["metrics"]}
    assert set(born) == {p.name for p in cfg.points}
    for p in cfg.points:
        m = born[p.name]
        assert m["datatype"] == 10 and m["value"] is None  # nothing read yet: null
        assert m["properties"] == {"unit": p.unit, "quantity": p.quantity, "quality": 0}


def test_default_group_is_the_site_code_and_the_will_is_an_unretained_ndeath(
        tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    s = _session(cfg)
    topic, payload = s.will()
    assert topic == f"spBv1.0/{cfg.site.code}/NDEATH/gw01" and s.will_retain is False
    death = decode_payload(payload)
    assert "seq" not in death and death["metrics"][0]["name"] == "bdSeq"
    assert death["metrics"][0]["value"] == 0
    assert s.subscriptions()[0][0] == f"spBv1.0/{cfg.site.code}/NCMD/gw01"


def test_bdseq_goes_up_per_connect_matches_the_will_and_survives_a_restart(
        tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    s = _session(cfg)
    wire = Wire()
    for expected in (0, 1, 2):
        will = decode_payload(s.will()[1])["metrics"][0]["value"]  # sent with the CONNECT
        s.on_connect(wire)
        nbirth = wire.take()[0][1]
        assert nbirth["metrics"][0]["value"] == will == expected
        assert decode_payload(s.next_will()[1])["metrics"][0]["value"] == expected + 1
    stop = Wire()
    s.on_stop(stop)
    (topic, death, qos, retain), = stop.sent
    assert topic.endswith("/NDEATH/gw01") and death["metrics"][0]["value"] == 2
    assert (qos, retain) == (1, False)
    again = _session(cfg)  # a restart continues where the last connect left
    assert decode_payload(again.will()[1])["metrics"][0]["value"] == 3
    bdseq_path(tmp_path, cfg.mqtt.name).write_text(json.dumps({"next_bdseq": 255}))
    last = _session(cfg)
    last.on_connect(wire)
    assert decode_payload(last.next_will()[1])["metrics"][0]["value"] == 0  # 255, then 0
    bdseq_path(tmp_path, cfg.mqtt.name).write_text("junk")
    assert decode_payload(_session(cfg).will()[1])["metrics"][0]["value"] == 0


def test_one_row_over_two_devices_is_a_ddata_each_settled_by_the_last(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    s = _session(cfg)
    wire = Wire()
    s.on_connect(wire)
    wire.take()
    names = [p.name for p in cfg.points]
    sent = s.send(_row(cfg, _values(cfg, [0, 1, 2], [1253.5, 12.25, float("nan")],
                                    [0, 0, 5])), wire)
    assert isinstance(sent, Sent) and sent.qos == 0
    out = wire.take()
    assert [t for t, *_ in out] == ["spBv1.0/130825-TP001/DDATA/gw01/radar_wl1",
                                    "spBv1.0/130825-TP001/DDATA/gw01/vw_logger_a"]
    assert [d["seq"] for _, d, _, _ in out] == [3, 4]  # after NBIRTH 0 and two DBIRTH
    assert all(q == 0 and not r for _, _, q, r in out)
    metrics = {m["name"]: m for _, d, _, _ in out for m in d["metrics"]}
    assert metrics[names[0]]["value"] == 1253.5 and metrics[names[1]]["value"] == 12.25
    assert metrics[names[2]]["value"] is None
    assert metrics[names[2]]["properties"]["quality"] == 5
    assert metrics[names[0]]["properties"]["quality"] == 0  # a return to good is said too
    assert all(m["timestamp"] == int((T0 - 1.5) * 1000) and "datatype" not in m
               for m in metrics.values())
    # the births of a rebirth carry what the host was last told
    s._command(encode_ncmd(int(T0 * 1000)))
    births = wire.take()
    assert births[0][0].endswith("/NBIRTH/gw01") and births[0][1]["seq"] == 0
    assert births[0][1]["metrics"][0]["value"] == 0  # same bdSeq: the same MQTT session
    born = {m["name"]: m for _, d, _, _ in births[1:] for m in d["metrics"]}
    assert born[names[0]]["value"] == 1253.5 and born[names[2]]["properties"]["quality"] == 5
    s._command(encode_ncmd(int(T0 * 1000), rebirth=False))
    s._command(b"\xff\xff junk")
    assert wire.take() == []


def test_seq_wraps_after_255(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    s = _session(cfg)
    wire = Wire()
    s.on_connect(wire)  # seq 0, 1, 2
    for k in range(300):
        s.send(_row(cfg, _values(cfg, [0], [float(k)]), k), wire)
    seqs = [d["seq"] for _, d, _, _ in wire.take()]
    assert seqs[:3] == [0, 1, 2]
    assert all(b == (a + 1) % 256 for a, b in zip(seqs, seqs[1:], strict=False))
    assert seqs[256] == 0 and max(seqs) == 255


def test_formula_points_are_the_nodes_metrics(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "metallurgy")
    formula = [p for p in cfg.points if p.device == ""]
    assert formula
    s = _session(cfg)
    wire = Wire()
    s.on_connect(wire)
    nbirth = wire.take()[0][1]
    assert {f.name for f in formula} <= {m["name"] for m in nbirth["metrics"]}
    i = formula[0].index
    s.send(_row(cfg, _values(cfg, [i, 0], [4.5, 1.0])), wire)
    topics = [t for t, *_ in wire.take()]
    assert topics[0] == f"spBv1.0/{cfg.site.code}/NDATA/{cfg.gateway.id}"
    assert topics[1].startswith(f"spBv1.0/{cfg.site.code}/DDATA/{cfg.gateway.id}/")


def test_statistics_are_not_sent_and_events_keep_their_json_side_topic(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    s = _session(cfg)
    wire = Wire()
    s.on_connect(wire)
    wire.take()
    n = len(cfg.points)
    stats = Report("stats", T0, np.arange(n), np.zeros(n, np.uint8), window_start=T0 - 300,
                   count=np.full(n, 3), samples=np.full(n, 3), vmin=np.ones(n),
                   vmax=np.ones(n), mean=np.ones(n))
    assert s.send(_row(cfg, stats), wire) is None and wire.sent == []
    event = {"seq": 7, "event_id": "e7", "kind": "safety"}
    row = OutboxRow(2, PRIORITY_EVENT, f"minewatch/v1/{cfg.site.code}/gw01/alert",
                    json.dumps(event).encode(), 1, 7, "e7", 0)
    sent = s.send(row, wire)
    (topic, doc, qos, retain), = wire.take()
    assert (topic, qos, retain, sent.qos) == (f"minewatch/v1/{cfg.site.code}/gw01/alert", 1,
                                              False, 1)
    assert doc["seq"] == 7 and doc["event_id"] == "e7" and "sent_at" in doc


def test_sparkplug_config_keys_are_checked(tmp_path: Path) -> None:
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    up = text.replace('[uplink.mqtt]\n', '[uplink.mqtt]\nencoding = "sparkplug"\n'
                      'sparkplug_group = "Ponds"\n', 1)
    path.write_text(up, encoding="utf-8")
    cfg = load_site(path)
    assert (cfg.mqtt.encoding, cfg.mqtt.sparkplug_group) == ("sparkplug", "Ponds")
    path.write_text(text.replace('[uplink.mqtt]\n', '[uplink.mqtt]\nencoding = "sparkplug"\n', 1),
                    encoding="utf-8")
    assert load_site(path).mqtt.sparkplug_group == "130825-TP001"
    for bad, key in (('sparkplug_group = "a/b"', "uplink.mqtt.sparkplug_group"),
                     ('encoding = "compact"\nsparkplug_group = "x"',
                      "uplink.mqtt.sparkplug_group")):
        path.write_text(text.replace('[uplink.mqtt]\n', '[uplink.mqtt]\n' + bad + '\n', 1)
                        .replace('encoding = "sparkplug"', ''), encoding="utf-8")
        if "encoding" not in bad:
            path.write_text(path.read_text().replace('[uplink.mqtt]\n',
                                                     '[uplink.mqtt]\nencoding = "sparkplug"\n',
                                                     1))
        with pytest.raises(ConfigError) as err:
            load_site(path)
        assert key in str(err.value)
    path.write_text(text.replace('name = "radar_wl1"', 'name = "radar/wl1"').replace(
        'device = "radar_wl1"', 'device = "radar/wl1"').replace(
        '[uplink.mqtt]\n', '[uplink.mqtt]\nencoding = "sparkplug"\n', 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert "devices[0].name" in str(err.value) and "device_id" in str(err.value)


def _state(online: bool, ts: int) -> bytes:
    return json.dumps({"online": online, "timestamp": ts}).encode()


def test_with_a_primary_host_the_node_is_born_only_while_its_state_says_online(
        tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    m = replace(cfg.mqtt, sparkplug_primary_host="Scada")
    cfg = replace(cfg, mqtt=m, uplinks=(m,))
    s = SparkplugSession(cfg, m, lambda: T0)
    handlers = dict(s.subscriptions())
    state = handlers["spBv1.0/STATE/Scada"]
    assert f"spBv1.0/{cfg.site.code}/NCMD/gw01" in handlers
    wire = Wire()
    s.on_connect(wire)
    assert wire.take() == [] and not s.ready()  # connected, waiting for the host
    assert s.health() == {"primary_host": {"id": "Scada", "online": False}}
    assert s.on_stop(wire) is None and wire.take() == []  # never born: no NDEATH to say
    state(_state(False, 100))  # its will, retained
    assert wire.take() == [] and not s.ready()
    state(_state(True, 200))
    kinds = [t.split("/")[2] for t, *_ in wire.take()]
    assert kinds[0] == "NBIRTH" and set(kinds[1:]) == {"DBIRTH"} and s.ready()
    assert s.health()["primary_host"]["online"] is True
    state(_state(False, 150))  # stale: older than the online one
    assert wire.take() == [] and s.ready()
    state(b'{"online": "yes", "timestamp": 300}')  # not a 3.0 STATE: ignored
    state(b"ONLINE")  # a 2.2 STATE: ignored
    assert wire.take() == [] and s.ready()
    state(_state(False, 300))
    (death,) = wire.take()
    assert death[0].split("/")[2] == "NDEATH" and death[2] == 1 and not s.ready()
    bdseq = [mt["value"] for mt in death[1]["metrics"] if mt["name"] == "bdSeq"]
    s._command(encode_ncmd(1))  # a rebirth request while the host is away: nothing
    assert wire.take() == []
    state(_state(True, 400))
    again = wire.take()
    assert again[0][0].split("/")[2] == "NBIRTH" and again[0][1]["seq"] == 0
    assert [mt["value"] for mt in again[0][1]["metrics"] if mt["name"] == "bdSeq"] == bdseq
    # a new connection waits for that server's STATE again
    s.on_connect(wire)
    assert wire.take() == [] and not s.ready()
    state(_state(True, 400))  # the retained one, delivered again at the subscribe
    assert wire.take()[0][0].split("/")[2] == "NBIRTH"


def test_without_a_primary_host_the_node_is_born_at_connect(tmp_path: Path) -> None:
    s = _session(_cfg(tmp_path))
    assert [t for t, _ in s.subscriptions()] == [f"spBv1.0/{s.cfg.site.code}/NCMD/gw01"]
    wire = Wire()
    assert not s.ready()
    s.on_connect(wire)
    assert wire.take()[0][0].split("/")[2] == "NBIRTH" and s.ready() and s.health() == {}


def test_the_primary_host_key_is_checked(tmp_path: Path) -> None:
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    good = '[uplink.mqtt]\nencoding = "sparkplug"\nsparkplug_primary_host = "Scada"\n'
    path.write_text(text.replace("[uplink.mqtt]\n", good, 1), encoding="utf-8")
    assert load_site(path).mqtt.sparkplug_primary_host == "Scada"
    for bad in ('encoding = "sparkplug"\nsparkplug_primary_host = "a/b"',
                'encoding = "sparkplug"\nsparkplug_primary_host = ""',
                'sparkplug_primary_host = "Scada"'):
        path.write_text(text.replace("[uplink.mqtt]\n", f"[uplink.mqtt]\n{bad}\n", 1),
                        encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_site(path)
        assert "uplink.mqtt.sparkplug_primary_host" in str(err.value), bad
