"""`ack` against a real Mosquitto and the simulator: an unacknowledged red alert is reminded at
its intervals, an acknowledgement is recorded in the alert log and published as an event of the
alert, the reminders stop after it, and a request delivered twice is executed once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest

from tests.support.platform import CommandSite
from tests.support.sites import ROOT

LOW = {"blue = 1253.0, yellow = 1254.0, orange = 1255.0, red = 1256.0":
       "blue = 1247.0, yellow = 1248.0, orange = 1249.0, red = 1250.0"}  # red from the start
# at x600 the main loop's one-second tick is 10 simulated minutes: a reminder every 2-3 s
REMINDERS = 'ack_reminder = "20min"\nack_reminder_growth = 1.0\nack_reminder_max = "20min"\n'


def _schema(name: str) -> dict:
    return json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())


def _two(items: list) -> list | None:
    return items if len(items) >= 2 else None


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_reminders_until_acknowledged_and_the_ack_recorded_once(tmp_path: Path,
                                                                 mosquitto) -> None:
    site = CommandSite(tmp_path, mosquitto.port, scale=600.0, commands=REMINDERS, replace=LOW)
    event_schema = _schema("event")
    try:
        red = site.wait(lambda: [a for a in site.recorder.on("alert")
                                 if a["point"] == "WL-01" and a["level"] == "red"])[0]
        alert_id = red["alert_id"]

        def of_alert(state: str) -> list[dict]:
            return [a for a in site.recorder.on("alert")
                    if a["alert_id"] == alert_id and a["state"] == state]

        reminders = site.wait(lambda: _two(of_alert("reminder")), why="two reminders")
        for k, ev in enumerate(reminders, start=1):
            jsonschema.validate(ev, event_schema)
            assert ev["level"] == "red" and ev["reminder"]["count"] == k

        # the platform acknowledges; its request reaches the gateway twice (a QoS 1 duplicate)
        topic, req = site.request("ack", {"alert_id": alert_id, "by": "张工",
                                          "note": "on my way"}, sign=False)
        jsonschema.validate(req, _schema("cmd_ack"))
        for _ in range(2):
            site.raw.publish(topic, json.dumps(req, ensure_ascii=False).encode())
        results = site.wait(lambda: _two(site.results(req["id"])), why="two answers")
        assert results[0] == results[1]  # the first result, answered again
        jsonschema.validate(results[0], _schema("cmd_result"))
        assert results[0]["ok"] and results[0]["result"]["acknowledged"]
        ack = site.wait(lambda: of_alert("acknowledged"))[0]
        jsonschema.validate(ack, event_schema)
        assert ack["seq"] == results[0]["result"]["seq"]
        assert ack["ack"]["by"] == "张工" and ack["ack"]["command_id"] == req["id"]
        assert ack["level"] == "red" and ack["point"] == "WL-01"

        # someone else acknowledges the same level later: not twice
        rc, doc, err = site.cmd("ack", "--alert-id", alert_id, "--by", "李工")
        assert rc == 0, err
        assert not doc["result"]["acknowledged"] and doc["result"]["already"]["by"] == "张工"

        time.sleep(8.0)  # more than three reminder intervals: none may come now
        assert len(of_alert("acknowledged")) == 1
        assert [r for r in of_alert("reminder") if r["seq"] > ack["seq"]] == []
        assert len(site.results(req["id"])) == 2
        # the alert log keeps who acknowledged it when
        logged = [e for e in site.alert_log() if e["state"] == "acknowledged"]
        assert [(e["alert_id"], e["ack"]["by"], e["ack"]["note"]) for e in logged] == [
            (alert_id, "张工", "on my way")]
        rc, doc, err = site.cmd("status")
        wl = [a for a in doc["result"]["alerts"] if a["point"] == "WL-01"][0]
        assert wl["acknowledged"] == {"level": "red"}
    finally:
        site.close()
