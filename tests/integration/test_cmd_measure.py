"""`measure`, `time` and `status` against a real Mosquitto and the simulator: a measurement is
polled when asked, not at the next period, answered with fresh values and published as
telemetry; a request's MQTT 5 Response Topic and Correlation Data are honoured; every request
and result fits its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.support.platform import CommandSite
from tests.support.sites import ROOT

PERIOD = 600.0  # the example's 10-minute poll period; at time scale 1 it is 10 real minutes


def _schema(name: str) -> dict:
    return json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_measure_is_answered_at_once_with_fresh_values(tmp_path: Path, mosquitto) -> None:
    site = CommandSite(tmp_path, mosquitto.port, scale=1.0)
    try:
        rc, doc, err = site.cmd("measure")
        assert rc == 0, err
        jsonschema.validate(doc, _schema("cmd_result"))
        result = doc["result"]
        assert result["unanswered"] == {}
        assert [p["point"] for p in result["points"]] == ["WL-01", "JRX-01", "JRX-02"]
        for p in result["points"]:
            # polled after the request arrived (the gateway polled every device at its start,
            # so the next scheduled poll is PERIOD away), well within a tenth of it
            assert result["asked_at"] <= p["observed_at"] < result["asked_at"] + PERIOD * 100
            assert p["quality_name"] == "good" and p["level"] == "none" and p["value"]
        assert {p["unit"] for p in result["points"]} == {"m"}

        rc, doc, err = site.cmd("measure", "--points", "WL-01")
        assert rc == 0, err
        assert [p["point"] for p in doc["result"]["points"]] == ["WL-01"]
        assert doc["result"]["devices"] == ["radar_wl1"]
        telemetry = site.wait(lambda: [m for m in site.recorder.on("telemetry")
                                       if m.get("command_id") == doc["id"]])
        assert telemetry[0]["kind"] == "measured"
        assert telemetry[0]["points"][0]["point"] == "WL-01"
        # on the wire in the default encoding, compact JSON, with the command's id
        (wire,) = [w for w in site.recorder.telemetry_wire
                   if json.loads(w).get("cmd") == doc["id"]]
        jsonschema.validate(json.loads(wire), _schema("telemetry-compact"))

        rc, doc, _ = site.cmd("measure", "--points", "WL-09")
        assert rc == 1 and doc["error"]["code"] == "not_found" and doc["error"]["unknown"] == [
            "WL-09"]

        rc, doc, err = site.cmd("time")
        assert rc == 0, err
        t = doc["result"]
        assert t["time_scale"] == 1.0 and t["timezone"] == "Asia/Shanghai"
        # the simulated site clock is off from the wall clock by exactly epoch - anchor; the
        # offset is that plus the request's transit on one machine
        off = (site.scenario.epoch - site.anchor) * 1000
        assert abs(t["offset_ms"] - off) < 60_000

        rc, doc, err = site.cmd("status")
        assert rc == 0, err
        status = doc["result"]
        assert status["devices_online"] == 2 and status["alerts"] == []
        assert status["commands"]["taken"]["measure"] == 3
        health = {k: v for k, v in status.items() if k not in ("version", "config_file",
                                                                "alerts")}
        jsonschema.validate(health, _schema("health"))

        # MQTT 5: the result goes to the request's Response Topic too, with its Correlation Data
        topic, req = site.request("time", {}, sign=False)
        jsonschema.validate(req, _schema("cmd_time"))
        site.raw.publish(topic, json.dumps(req).encode(), "platform/replies/desk-7", b"corr-42")
        replies = site.wait(lambda: site.raw.messages("platform/replies/desk-7"))
        assert replies[0][1]["id"] == req["id"] and replies[0][2] == b"corr-42"
        on_result = site.wait(lambda: [m for m in site.raw.messages("/cmd_result")
                                       if m[1]["id"] == req["id"]])
        assert on_result[0][2] == b"corr-42"
        # a Response Topic among the gateway's own topics is never published on
        topic, req = site.request("time", {}, sign=False)
        site.raw.publish(topic, json.dumps(req).encode(), f"{site.base}/alert", b"x")
        site.wait(lambda: site.results(req["id"]))
        assert not [m for m in site.recorder.on("alert") if m.get("id") == req["id"]]
    finally:
        site.close()
