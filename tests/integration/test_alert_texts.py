"""What the platform receives is true (issue 15): the dam example plays the dam_creep scenario
live (simulator over Modbus TCP and an RTU-over-TCP device server, the gateway, a real
Mosquitto), and the alert payloads the platform receives quote each detector's own decision:
the tangent angle its angle and level, inverse velocity its forecast failure time, a threshold
its level; a downgrade or a clear is credited to the detector that held the level.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jsonschema
import pytest

from firmware_sim.scenario import load_scenario
from tests.support.services import MqttRecorder, free_port, python_cli, wait_for_line

ROOT = Path(__file__).resolve().parents[2]
SCALE = 36000.0  # every device hourly: an hour is 100 ms of real time, the clock's cap


def _dam_site(tmp: Path, mqtt_port: int) -> Path:
    text = (ROOT / "config" / "examples" / "tailings_dam.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = (\d+)$", lambda m: f"port = {free_port()}", text)
    text = re.sub(r"(?m)^state_dir = .*$", f'state_dir = "{tmp / "state"}"', text)
    text = re.sub(r"(?m)^listen = .*$", 'listen = "off"', text)
    # hourly polls everywhere (GNSS solutions are hourly anyway), so 15 days pass in a minute
    text = re.sub(r'(?m)^abnormal_period = ".*"\n', "", text)
    text = re.sub(r'(?m)^period = ".*"$', 'period = "1h"\nabnormal_period = "1h"', text)
    text = re.sub(r"(?ms)^\[uplink\.mqtt\].*?(?=^\[|\Z)", "", text)
    text += f'\n[uplink.mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
    path = tmp / "dam.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_dam_creep_events_name_their_own_criterion_end_to_end(tmp_path: Path,
                                                                mosquitto) -> None:
    scenario = load_scenario("dam_creep")
    site = _dam_site(tmp_path, mosquitto.port)
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    anchor = time.time() + 4.0
    clock = ["--epoch", str(scenario.epoch), "--time-scale", str(SCALE), "--anchor", str(anchor)]
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "dam_creep", "--site-config",
                     str(site), *clock, log=tmp_path / "sim.log")
    gw = None
    try:
        wait_for_line(tmp_path / "sim.log", '"listening"')
        gw = python_cli("gateway.cli", "run", "--config", str(site), *clock, "--until",
                        str(scenario.epoch + scenario.duration), log=tmp_path / "gateway.log")
        assert gw.wait(timeout=240) == 0, (tmp_path / "gateway.log").read_text()[-4000:]
        time.sleep(0.5)
    finally:
        if gw and gw.poll() is None:
            gw.kill()
        sim.terminate()
        sim.wait(5)
        recorder.close()
    schema = json.loads((ROOT / "config" / "schema" / "event.schema.json").read_text())
    alerts = sorted(recorder.on("alert"), key=lambda e: e["seq"])
    assert alerts, (tmp_path / "gateway.log").read_text()[-3000:]
    for ev in alerts:
        jsonschema.validate(ev, schema)
    points = [e for e in alerts if not e["point"].startswith("item:")]
    by = {d: [e for e in points if e["detector"] == d and e["state"] in ("raised", "escalated")]
          for d in ("tangent_angle", "inverse_velocity", "threshold")}
    assert by["tangent_angle"] and by["inverse_velocity"], [
        (e["point"], e["state"], e["level"], e["detector"]) for e in points]
    for ev in by["tangent_angle"]:
        assert "improved tangent angle" in ev["message"]["en"] and "改进切线角" in ev["message"]["zh"]
        assert ev["threshold"] == pytest.approx(ev["evidence"]["level_deg"])
        assert f"{ev['threshold']:g} deg" in ev["criterion"]
        assert ev["evidence"]["angle_deg"] >= ev["threshold"] - 2.0  # within the restore band
    for ev in by["inverse_velocity"]:
        assert "inverse velocity forecasts failure at" in ev["message"]["en"], ev["message"]
        assert "反速度法预测" in ev["message"]["zh"]
        assert ev["threshold"] == pytest.approx(ev["evidence"]["level_lead_s"] / 86400.0)
        assert "threshold" not in ev["message"]["en"]  # no level threshold quoted
    for ev in by["threshold"]:
        assert f"(threshold {ev['threshold']:g} {ev['unit']})" in ev["message"]["en"]
    # every downgrade and clear is credited to the detector that held the level
    holder: dict[str, str] = {}
    for ev in points:
        if ev["state"] in ("raised", "escalated"):
            holder[ev["point"]] = ev["detector"]
            continue
        assert ev["detector"] == holder[ev["point"]], (ev["point"], ev["state"], ev["detector"])
        if ev["state"] == "cleared":
            holder.pop(ev["point"])
        else:
            holder[ev["point"]] = ev.get("held_by", ev["detector"])
