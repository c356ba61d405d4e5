"""The sink's pure parts: line protocol encoding and the bounded spool (also on a refusing disk)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gateway.storage.line_protocol import (
    alert_line,
    health_lines,
    raw_lines,
    reading_lines,
    tag_set,
)
from gateway.storage.spool import PRIORITY_READING, PRIORITY_RECORD, Spool


def test_tag_values_with_spaces_commas_and_equals_are_escaped() -> None:
    assert tag_set(point="JRX 01,a=b", site="S") == r",point=JRX\ 01\,a\=b,site=S"
    assert tag_set(device="", point="P") == ",point=P"  # no empty tag values


def test_reading_lines_keep_the_sample_time_and_drop_missing_values() -> None:
    prefixes = ["reading,point=A", "reading,point=B"]
    lines = reading_lines(prefixes, np.array([1, 0]), np.array([np.nan, 1253.25]),
                          np.array([5, 0], dtype=np.uint8), 1700000000.1234)
    assert lines == ["reading,point=B quality=5i 1700000000123",
                     "reading,point=A value=1253.25,quality=0i 1700000000123"]


def test_alert_and_health_lines_are_numeric() -> None:
    ev = {"point": "WL-01", "quantity": "water_level", "kind": "safety", "detector": "threshold",
          "level": "orange", "state": "escalated", "seq": 7, "value": 1255.1,
          "observed_at": 1700000000000}
    assert alert_line("S", "gw", ev) == (
        "alert,detector=threshold,gateway=gw,kind=safety,point=WL-01,quantity=water_level,site=S"
        " level=3i,state=2i,seq=7i,value=1255.1 1700000000000")
    lines = health_lines("S", "gw", {"ts": 1700000000000, "uptime_s": 12.5, "devices_online": 1,
                                     "outbox": {"events": 0, "telemetry": 3},
                                     "devices": [{"device": "d1", "online": True, "polls": 4,
                                                  "online_rate": None}]})
    assert lines[0].startswith("gateway_health,gateway=gw,site=S uptime_s=12.5,devices_online=1i")
    assert lines[1] == "device_health,device=d1,gateway=gw,site=S online=1i,polls=4i 1700000000000"


def test_spool_survives_reopening_and_hands_out_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, 1 << 20)
    for i in range(5):
        spool.append([f"m v={i}i {i}", f"m w={i}i {i}"])
    spool.close()
    spool = Spool(path, 1 << 20)
    assert spool.backlog() == 10
    chunk = spool.peek(max_lines=5)
    assert chunk.lines == 4 and chunk.body.split(b"\n")[0] == b"m v=0i 0"
    spool.remove(chunk)
    assert spool.backlog() == 6
    big = spool.peek(max_lines=1)  # never less than one chunk, or a big chunk would block
    assert big.lines == 2


def test_spool_at_its_cap_drops_oldest_readings_before_alerts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=200)
    spool.append(["alert level=4i 1"], PRIORITY_RECORD)
    for i in range(20):
        spool.append([f"reading value={i}.0 {i}"], PRIORITY_READING)
    bodies = []
    while (chunk := spool.peek(1)) is not None:
        bodies.append(chunk.body.decode())
        spool.remove(chunk)
    assert bodies[0] == "alert level=4i 1"
    assert bodies[-1] == "reading value=19.0 19"
    assert spool.dropped == 20 - (len(bodies) - 1) > 0
    assert Spool(tmp_path / "spool.sqlite", 200).dropped == spool.dropped  # counted on disk


def test_influx_settings_are_validated_with_the_key_named(tmp_path: Path) -> None:
    import pytest

    from gateway.config import ConfigError, load_site
    from tests.support.sites import example_site

    cfg = example_site(tmp_path, modbus_port=5020, mqtt_port=1883)
    with cfg.open("a", encoding="utf-8") as f:
        f.write('\n[storage.influx]\nurl = "http://127.0.0.1:8428"\nflush_interval = "0s"\n'
                'spool_max_bytes = "big"\n')
    with pytest.raises(ConfigError) as err:
        load_site(cfg)
    text = str(err.value)
    assert "storage.influx.flush_interval" in text and "above zero" in text
    assert "storage.influx.spool_max_bytes" in text
    cfg.write_text(cfg.read_text().replace('flush_interval = "0s"\nspool_max_bytes = "big"\n',
                                           'retry_max = "2min"\n'))
    influx = load_site(cfg).influx
    assert influx.retry_max == 120.0 and influx.spool_path.name == "influx_spool.sqlite"


def test_a_spool_the_disk_refuses_keeps_lines_in_memory_and_writes_them_later(
        tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=1 << 20)
    spool.append(["m v=1i 1"])
    spool._db.execute("PRAGMA query_only=1")  # the file refuses every write (read-only)
    for i in range(2, 6):
        spool.append([f"m v={i}i {i}"])
    assert spool.guard.state == "read_only" and spool.in_memory() == 4
    chunk = spool.peek(max_lines=3)  # the sink still writes them to the database
    assert chunk.body.split(b"\n") == [b"m v=1i 1", b"m v=2i 2", b"m v=3i 3"]
    spool.remove(chunk)  # the file's chunk cannot be deleted yet: not handed out again
    assert spool.backlog() == 2 and spool.peek(10).body == b"m v=4i 4\nm v=5i 5"
    spool._db.execute("PRAGMA query_only=0")
    spool.append(["m v=6i 6"])  # the next append writes what waited
    assert spool.guard.state == "ok" and spool.in_memory() == 0
    spool.close()
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=1 << 20)
    assert spool.peek(10).body == b"m v=4i 4\nm v=5i 5\nm v=6i 6"


def test_lines_waiting_in_memory_are_bounded_readings_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=300)
    spool._db.execute("PRAGMA query_only=1")
    spool.append(["alert level=4i 1"], PRIORITY_RECORD)
    for i in range(40):
        spool.append([f"reading value={i}.0 {i}"], PRIORITY_READING)
    bodies = []
    while (chunk := spool.peek(1)) is not None:
        bodies.append(chunk.body.decode())
        spool.remove(chunk)
    assert bodies[0] == "alert level=4i 1" and bodies[-1] == "reading value=39.0 39"
    assert spool.dropped == 40 - (len(bodies) - 1) > 0


def test_raw_lines_keep_the_measurands_of_converted_points_only() -> None:
    prefixes = ["raw,point=JRX-01", None]  # the second point has no conversion
    lines = raw_lines(prefixes, np.array([0, 1]), np.array([2631.5, 7.0]),
                      np.array([12.25, np.nan]), 1_784_476_800.5)
    assert lines == ["raw,point=JRX-01 value=2631.5,aux=12.25 1784476800500"]
    assert raw_lines(prefixes, np.array([0]), np.array([np.nan]), np.array([12.0]), 0.0) == []
