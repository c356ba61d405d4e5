"""A broker that refuses one event of a window and takes the ones behind it.

Mosquitto's ACL lets the gateway publish faults and not alerts (MQTT 5 answers the refused
publish with reason 0x87, "not authorized"). Alert seq 1 and faults seq 2 and 3 go out in one
window: the broker refuses 1 and takes 2 and 3, which the platform gets first. The publisher does
not count 2 and 3 as delivered: it retries 1 alone, with backoff, until the ACL allows it, and
then sends 2 and 3 again, so the last copy of every event reaches the platform in seq order and
nothing leaves the outbox before the broker has accepted it in order.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.config import load_site
from gateway.outbox import Outbox
from gateway.uplink.mqtt import MqttPublisher
from tests.support.services import Mosquitto, MqttRecorder, free_port, require_binary
from tests.support.sites import example_site
from tests.support.uplink import draining


def _event(n: int, kind: str) -> dict:
    return {"event_id": f"00000000-0000-0000-0000-{n:012d}", "alert_id": f"a{n}", "kind": kind,
            "state": "raised", "level": "blue" if kind == "safety" else "none",
            "point": "WL-01", "observed_at": 1000 * n, "site": "130825-TP001",
            "gateway": "gw01"}


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_events_accepted_behind_a_refused_one_are_sent_again_after_it(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite minewatch/v1/+/+/status\n"
                   "topic readwrite minewatch/v1/+/+/fault\ntopic read #\n")
    mqtt = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mqtt",
                     free_port(), f"acl_file {acl}\n")
    mqtt.start()
    cfg = load_site(example_site(tmp_path, modbus_port=free_port(), mqtt_port=mqtt.port,
                                 replace={"receipts = true": "receipts = false"}))
    assert cfg.mqtt.max_inflight == 20
    outbox = Outbox(cfg.outbox.path)
    base = f"minewatch/v1/{cfg.site.code}/{cfg.gateway.id}"
    for n, kind in ((1, "safety"), (2, "fault"), (3, "fault")):
        outbox.commit_events([(f"{base}/{'alert' if kind == 'safety' else 'fault'}",
                               _event(n, kind))], [])
    platform = MqttRecorder(mqtt.port, "minewatch/v1/#", receipts=False)

    def arrived() -> list[int]:
        """The events' seq in the order the platform got them."""
        with platform.lock:
            return [m["seq"] for t, m, _ in platform.messages
                    if t.rpartition("/")[2] in ("alert", "fault")]

    async def run() -> MqttPublisher:
        async with draining(MqttPublisher(cfg, outbox, time.time)) as publisher:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (publisher.rejected >= 2
                                                       and sorted(arrived()) == [2, 3]):
                await asyncio.sleep(0.05)  # 1 refused twice (then alone), 2 and 3 taken
            assert publisher.rejected >= 2 and sorted(arrived()) == [2, 3], arrived()
            assert outbox.depth()["events"] == 3  # nothing counted out of order
            acl.write_text("topic readwrite minewatch/v1/#\n")
            mqtt.reload()
            while time.monotonic() < deadline + 30 and outbox.depth()["events"]:
                await asyncio.sleep(0.05)
        return publisher

    try:
        publisher = asyncio.run(run())
        time.sleep(0.5)
    finally:
        platform.close()
        mqtt.stop()
    assert outbox.depth()["events"] == 0 and publisher.published == 3
    # 2 and 3 came first, then 1 and, after it, 2 and 3 again: the last copies in seq order
    assert arrived() == [2, 3, 1, 2, 3]
    assert all(e["delivered_at"] for e in outbox.alert_log())
    outbox.close()
