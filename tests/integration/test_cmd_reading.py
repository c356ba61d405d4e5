"""`reading` against a real Mosquitto and the simulator: a manual reading sent by the platform is
graded, compared with the automatic value, published as telemetry kind `manual` and stored; one
that disagrees beyond the point's `manual_tolerance` opens a comparison fault that the next
agreeing reading clears; a reading outside the point's range is refused, naming the argument."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.support.platform import CommandSite
from tests.support.sites import ROOT


def _schema(name: str) -> dict:
    return json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_reading_sent_by_the_platform_is_graded_compared_and_published(
        tmp_path: Path, mosquitto) -> None:
    site = CommandSite(tmp_path, mosquitto.port, scale=1.0)
    try:
        rc, doc, err = site.cmd("measure", "--points", "WL-01")
        assert rc == 0, err
        auto = doc["result"]["points"][0]["value"]

        topic, req = site.request("reading", {"point": "WL-01", "value": auto + 0.01,
                                              "by": "李工", "note": "staff gauge"}, sign=False)
        jsonschema.validate(req, _schema("cmd_reading"))
        site.raw.publish(topic, json.dumps(req, ensure_ascii=False).encode())
        answer = site.wait(lambda: site.results(req["id"]))[0]
        jsonschema.validate(answer, _schema("cmd_result"))
        assert answer["ok"], answer
        result = answer["result"]
        assert result["point"] == "WL-01" and result["quality"] == 6 and result["by"] == "李工"
        assert result["level"] == "none" and result["comparison"]["agrees"] is True
        manual = site.wait(lambda: [m for m in site.recorder.on("telemetry")
                                    if m.get("kind") == "manual"])
        assert manual[0]["reading"]["reading_id"] == result["reading_id"]
        jsonschema.validate(manual[0], _schema("telemetry"))

        # 0.5 m off with a tolerance of 0.05 m: a drifting sensor, the comparison fault opens
        rc, doc, err = site.cmd("reading", "--point", "WL-01", "--value", str(auto + 0.5),
                                "--by", "李工")
        assert rc == 0, err
        assert doc["result"]["comparison"]["agrees"] is False
        raised = [e for e in doc["result"]["events"] if e["kind"] == "fault"]
        assert raised and raised[0]["state"] == "raised"
        faults = site.wait(lambda: [m for m in site.recorder.on("fault")
                                    if m.get("detector") == "comparison"])
        assert faults[0]["point"] == "WL-01"

        rc, doc, err = site.cmd("reading", "--point", "WL-01", "--value", str(auto), "--by", "李工")
        assert rc == 0, err
        assert doc["result"]["comparison"]["agrees"] is True
        assert [e["state"] for e in doc["result"]["events"] if e["kind"] == "fault"] == ["cleared"]

        # a staff gauge does not read 10 km: refused, naming the argument, nothing stored
        rc, doc, _ = site.cmd("reading", "--point", "WL-01", "--value", "10000", "--by", "李工")
        assert rc == 1 and doc["error"]["code"] == "bad_request"
        assert doc["error"]["argument"] == "value" and doc["error"]["message_zh"]
        rc, doc, _ = site.cmd("reading", "--point", "WL-09", "--value", "1", "--by", "李工")
        assert rc == 1 and doc["error"]["argument"] == "point"
    finally:
        site.close()
