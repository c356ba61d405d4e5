"""A window of messages in flight keeps the alerts' order through a broker restart.

The rainstorm's alerts are raised while the broker is down, so they wait in the outbox with the
outage's telemetry. The broker comes back behind a slow link (a delay proxy, 2 s each way): the
gateway publishes its whole window at once, every waiting alert among it, and once the platform
has the first of them the test restarts the broker: the window's PUBACKs are still on the slow
way back and die with the connection. After the reconnect paho sends the window again, first and
in order. The platform must get every committed event, its first arrivals in seq order with no
gap, and no copy beyond the ones QoS 1 allows: a second copy from the gateway only of what was
in flight at the restart. The broker's own leg to the platform is QoS 1 too: a delivery the
platform had not yet acknowledged when the broker stopped comes again with DUP set, and that copy
is the broker's, not the gateway's: the recorder keeps it apart (`MqttRecorder.redelivered`).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_uplink_durability import (
    Site,
    assert_all_delivered,
    broker,  # noqa: F401 (the fixture)
    first_arrivals,
    wait_until,
)
from tests.support.delay_proxy import DelayProxy
from tests.support.services import MqttRecorder, free_port


def _in_flight(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        (uplink,) = json.loads(r.read())["uplinks"]
    return uplink


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_alert_order_is_kept_through_a_broker_restart_with_a_full_window(
        tmp_path: Path, broker) -> None:  # noqa: F811
    mqtt = broker(persistent=True)  # the platform's session survives the restart
    link = DelayProxy(mqtt.port).start()
    status_port = free_port()
    site = Site(tmp_path, link.port, scale=3000.0, start_h=17.0,
                listen=f"127.0.0.1:{status_port}")
    assert "max_inflight" not in site.cfg.read_text()  # the default window, 20
    recorder = MqttRecorder(mqtt.port, "minewatch/v1/#")
    gw = site.gateway(until_h=46.0)
    flying: dict = {}
    arrived: list = []
    try:
        wait_until(site.real(19.5))
        mqtt.stop()  # blue, yellow, orange and red are raised during the outage
        wait_until(site.real(36.5))
        link.delay = 2.0
        mqtt.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the window is out, its PUBACKs on their way back
            flying = _in_flight(status_port)
            arrived = [m for m in recorder.on("alert")
                       if site.hours(m["observed_at"]) > 19.5]
            if arrived and flying["in_flight"] >= 5:
                break
            time.sleep(0.05)
        assert arrived and flying.get("in_flight", 0) >= 5, flying
        mqtt.stop()
        link.delay = 0.0
        mqtt.start()
        assert gw.wait(timeout=150) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        recorder.close()
        link.stop()
    received = recorder.on("alert") + recorder.on("fault")
    committed = site.committed()
    assert [(c["state"], c["level"]) for c in committed][:4] == [
        ("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange"),
        ("escalated", "red")]
    assert_all_delivered(received, committed)  # first arrivals: every seq, in order
    outage = [m for m in first_arrivals(received) if 19.5 < site.hours(m["observed_at"]) < 36.5]
    assert len(outage) >= 4  # the alerts that were in the window
    copies = Counter(m["event_id"] for m in received)
    again = [eid for eid, n in copies.items() if n > 1]
    assert max(copies.values()) <= 2 and len(again) <= flying["in_flight"], copies
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0
