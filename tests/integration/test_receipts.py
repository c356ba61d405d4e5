"""End-to-end receipts: the broker's PUBACK is not the platform's receipt.

A real Mosquitto without persistence queues the alerts for the platform's persistent session
while the platform's subscriber is offline, acknowledges them to the gateway, and is then killed:
the queue dies with it. The broker comes back, the platform subscribes again (a new session:
the old one died too). With `receipts = true` the gateway kept every acknowledged alert as "sent,
unconfirmed" and sends it again until the platform's receipt covers it, so the platform ends up
with every event the gateway committed and the outbox holds nothing unconfirmed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.test_uplink_durability import Site, first_arrivals, wait_until
from tests.support.services import Mosquitto, MqttRecorder, free_port, require_binary


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_alerts_the_broker_lost_while_the_platform_was_offline_still_arrive(
        tmp_path: Path) -> None:
    mqtt = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mosquitto",
                     free_port(), persistent=False)
    mqtt.start()
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=17.0,
                replace={'receipt_timeout = "60s"': 'receipt_timeout = "2s"'})
    platform = MqttRecorder(mqtt.port, "minewatch/v1/#")  # its session outlives its connection
    gw = site.gateway(until_h=46.0)
    platform_again = None
    try:
        wait_until(site.real(19.0))
        platform.close()  # the platform goes offline before blue (20 h)
        wait_until(site.real(31.0))  # blue, yellow and orange: PUBACKed, queued for the platform
        with site.outbox() as db:
            unconfirmed = db.execute("SELECT count(*) FROM outbox WHERE priority = 0 "
                                     "AND sent IS NOT NULL").fetchone()[0]
        assert unconfirmed >= 3, site.logs()  # acknowledged by the broker, kept
        mqtt.proc.kill()  # the broker dies with the queue it acknowledged
        mqtt.proc.wait(5)
        wait_until(site.real(32.0))
        mqtt.start()
        wait_until(site.real(33.0))
        platform_again = MqttRecorder(mqtt.port, "minewatch/v1/#",
                                      known=platform.on("alert") + platform.on("fault"))
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        platform.close()
        if platform_again is not None:
            platform_again.close()
        mqtt.stop()
    received = first_arrivals(platform.on("alert") + platform.on("fault")
                              + platform_again.on("alert") + platform_again.on("fault"))
    committed = site.committed()
    levels = [(c["state"], c["level"]) for c in committed if c["kind"] == "safety"]
    assert levels[:4] == [("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange"),
                          ("escalated", "red")]
    # every committed event reached the platform, whatever the broker lost
    assert sorted(m["event_id"] for m in received) == sorted(c["event_id"] for c in committed)
    assert sorted(m["seq"] for m in received) == list(range(1, len(committed) + 1))
    lost_by_the_broker = [m for m in received if 20.0 <= site.hours(m["observed_at"]) < 31.0]
    assert len(lost_by_the_broker) >= 3  # sent again after the broker had PUBACKed them
    assert all(c["confirmed_at"] for c in committed)  # the platform's receipts covered all
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0
