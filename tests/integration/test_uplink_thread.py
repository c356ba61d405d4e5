"""paho's network thread ending on an error does not end the uplink.

An error that escapes a paho callback ends paho's thread for good: without a watch, the gateway
would publish nothing more and never reconnect, and say nothing. Here a callback fails once on a
real Mosquitto, while connected (a PUBACK's callback, with a window of events in flight) and
while the broker is down (the connect failure's callback): the log says so with the traceback,
the target connects again on a new thread, and every event reaches the platform, in seq order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import jsonschema
import pytest

from gateway.config import load_site
from gateway.outbox import Outbox
from gateway.uplink.mqtt import MqttPublisher
from tests.support.services import Mosquitto, MqttRecorder, free_port, require_binary
from tests.support.sites import ROOT, example_site
from tests.support.uplink import draining

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _event(n: int) -> dict:
    return {"event_id": f"00000000-0000-0000-0000-{n:012d}", "alert_id": f"a{n}",
            "kind": "safety", "state": "raised", "level": "red", "point": "WL-01",
            "observed_at": 1000 * n, "site": "130825-TP001", "gateway": "gw01"}


class Once:
    """A callback that raises the first time it is called (a bug in it), then does its job."""

    def __init__(self, callback):
        self.callback, self.raised = callback, False

    def __call__(self, *args) -> None:
        if not self.raised:
            self.raised = True
            raise RuntimeError("a bug in a callback")
        self.callback(*args)


def _setup(tmp_path: Path):
    mqtt = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mqtt",
                     free_port())
    mqtt.start()
    cfg = load_site(example_site(tmp_path, modbus_port=free_port(), mqtt_port=mqtt.port,
                                 replace={"receipts = true": "receipts = false"}))
    outbox = Outbox(cfg.outbox.path)
    base = f"minewatch/v1/{cfg.site.code}/{cfg.gateway.id}"
    return mqtt, cfg, outbox, base


def _arrived(platform: MqttRecorder) -> list[int]:
    with platform.lock:
        return [m["seq"] for t, m, _ in platform.messages if t.endswith("/alert")]


async def _until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


def test_a_failing_puback_callback_mid_window_loses_nothing(tmp_path: Path, caplog) -> None:
    mqtt, cfg, outbox, base = _setup(tmp_path)
    for n in range(1, 6):
        outbox.commit_events([(f"{base}/alert", _event(n))], [])
    platform = MqttRecorder(mqtt.port, "minewatch/v1/#", receipts=False)
    caplog.set_level(logging.INFO, logger="minewatch.mqtt")

    async def run() -> MqttPublisher:
        async with draining(MqttPublisher(cfg, outbox, time.time)) as publisher:
            # the first PUBACK's callback fails: paho's thread ends with five events in flight
            publisher._client.on_publish = Once(publisher._on_publish)
            await _until(lambda: outbox.depth()["events"] == 0, 30)
        return publisher

    try:
        publisher = asyncio.run(run())
        time.sleep(0.3)
    finally:
        platform.close()
        mqtt.stop()
    assert outbox.depth()["events"] == 0, outbox.depth()
    assert publisher.network_restarts == 1
    health = publisher.health()
    assert health["network_restarts"] == 1
    schema = json.loads((ROOT / "config" / "schema" / "health.schema.json").read_text())
    jsonschema.validate(health, schema["properties"]["uplinks"]["items"])
    failed = [r for r in caplog.records if getattr(r, "event", "") == "mqtt_loop_failed"]
    assert len(failed) == 1 and "a bug in a callback" in failed[0].getMessage()
    assert failed[0].exc_info is not None  # the traceback, for whoever fixes the bug
    seqs = _arrived(platform)
    assert sorted(set(seqs)) == [1, 2, 3, 4, 5], seqs
    # a copy sent again after the reconnect may follow, never an event out of order before it
    first = [s for i, s in enumerate(seqs) if s not in seqs[:i]]
    assert first == [1, 2, 3, 4, 5], seqs
    outbox.close()


def test_a_callback_failing_as_the_broker_goes_down_does_not_leave_the_gateway_offline(
        tmp_path: Path, caplog) -> None:
    mqtt, cfg, outbox, base = _setup(tmp_path)
    caplog.set_level(logging.INFO, logger="minewatch.mqtt")

    async def run() -> MqttPublisher:
        async with draining(MqttPublisher(cfg, outbox, time.time)) as publisher:
            assert await _until(publisher.connected.is_set, 15)
            # the disconnect's callback fails: paho's thread ends as the broker goes away, and
            # without a watch nothing would ever connect again
            publisher._client.on_disconnect = Once(publisher._on_disconnect)
            mqtt.stop()
            assert await _until(lambda: publisher.network_restarts == 1, 15)
            outbox.commit_events([(f"{base}/alert", _event(1))], [])  # a red during the outage
            publisher.notify()
            await asyncio.sleep(0.5)
            mqtt.start()  # the broker is back: the gateway reconnects by itself
            await _until(lambda: outbox.depth()["events"] == 0, 45)
        return publisher

    try:
        publisher = asyncio.run(run())
    finally:
        mqtt.stop()
    assert outbox.depth()["events"] == 0 and publisher.published == 1, outbox.depth()
    assert publisher.network_restarts == 1
    connected = [r for r in caplog.records if getattr(r, "event", "") == "mqtt_connected"]
    assert len(connected) == 2  # at the start, and after the broker came back
    outbox.close()
