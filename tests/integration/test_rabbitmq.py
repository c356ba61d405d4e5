"""The gateway against RabbitMQ's MQTT plugin, a clusterable broker a city may run that speaks
MQTT 3.1.1 only (issue 18): with `protocol = "3.1.1"` the rainstorm's every event reaches the
platform once, in seq order, and the platform's receipts (retained, on RabbitMQ's retained store)
confirm them. A real RabbitMQ node started by the test on loopback (tests/support/rabbitmq.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.scenario import load_scenario
from tests.support.rabbitmq import RabbitMQ
from tests.support.services import MqttRecorder, free_port, play_scenario
from tests.support.sites import example_site

EXPECTED = ["raised:blue", "escalated:yellow", "escalated:orange", "escalated:red",
            "downgraded:orange", "downgraded:yellow", "downgraded:blue", "cleared:none"]


@pytest.mark.integration
@pytest.mark.timeout(400)
def test_a_gateway_on_rabbitmq_mqtt_3_1_1_delivers_every_event(tmp_path: Path) -> None:
    broker = RabbitMQ(tmp_path / "rabbitmq")
    broker.start()
    try:
        sim_port = free_port()
        cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=broker.port, replace={
            'protocol = "5"': 'protocol = "3.1.1"',
            'abnormal_period = "5min"': 'abnormal_period = "10min"',
            "\nthresholds = {": '\ndetectors = ["threshold"]\nthresholds = {'})
        recorder = MqttRecorder(broker.port, "minewatch/v1/#", protocol="3.1.1")
        play_scenario(tmp_path, load_scenario("rainstorm"), cfg, sim_port, recorder, 6000.0,
                      timeout=240)
    finally:
        broker.stop()
    log = (tmp_path / "gateway.log").read_text()
    alerts = recorder.on("alert")
    assert [f"{a['state']}:{a['level']}" for a in alerts] == EXPECTED, log[-3000:]
    assert [a["seq"] for a in alerts] == list(range(1, len(EXPECTED) + 1))
    assert len({a["event_id"] for a in alerts}) == len(alerts)  # each once
    assert '"mqtt_connected"' in log and "rejected" not in log
    # receipts went through RabbitMQ's retained store and confirmed every event before the stop
    assert "gateway stopped; 0 events and" in log, log[-2000:]
    status = recorder.on("status")
    assert status[0]["state"] == "online" and status[-1]["state"] == "offline"
    assert any(m["kind"] == "stats" for m in recorder.on("telemetry"))
