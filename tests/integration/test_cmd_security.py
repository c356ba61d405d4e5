"""Signed commands against a real Mosquitto and the simulator: with a command key, an unsigned,
wrongly signed, stale, retained or replayed request is refused with its reason (logged once per
reason) and never run, a signed request runs once however often it is delivered, and an Ed25519
key works through the CLI with the platform's private key."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from gateway.commands.keys import CommandKey
from tests.support.platform import CommandSite


def _refused(site: CommandSite, req: dict) -> dict:
    return site.wait(lambda: site.results(req["id"]), why=f"an answer to {req['id']}")[0]


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_unsigned_forged_stale_and_replayed_requests_are_refused(tmp_path: Path,
                                                                  mosquitto) -> None:
    site = CommandSite(tmp_path, mosquitto.port, scale=60.0, key=True)
    try:
        rc, doc, err = site.cmd("time")  # the CLI signs with the config's key
        assert rc == 0 and doc["ok"], err

        topic, unsigned = site.request("measure", {}, sign=False)
        for _ in range(2):
            site.raw.publish(topic, json.dumps(unsigned).encode())
        answers = site.wait(lambda: site.results(unsigned["id"])[1:] and
                            site.results(unsigned["id"]))
        assert {a["error"]["code"] for a in answers} == {"unsigned"} and not answers[0]["ok"]

        _, forged = site.request("measure", {}, sign=False)
        forged["sig"] = CommandKey("hmac-sha256", b"x" * 40).sign(topic, forged)
        site.raw.publish(topic, json.dumps(forged).encode())
        assert _refused(site, forged)["error"]["code"] == "bad_signature"

        _, stale = site.request("measure", {}, ts_ms=int((time.time() - 3600) * 1000))
        site.raw.publish(topic, json.dumps(stale).encode())
        error = _refused(site, stale)["error"]
        assert error["code"] == "stale" and "-3600 s" in error["message"]

        _, kept = site.request("time", {})
        site.raw.publish(site.base + "/cmd/time", json.dumps(kept).encode(), retain=True)
        assert _refused(site, kept)["error"]["code"] == "retained"
        site.raw.publish(site.base + "/cmd/time", b"", retain=True)  # clear it

        # a signed request delivered twice: run once (one measurement), answered twice alike
        _, good = site.request("measure", {"points": ["WL-01"]})
        for _ in range(2):
            site.raw.publish(topic, json.dumps(good).encode())
        answers = site.wait(lambda: site.results(good["id"])[1:] and site.results(good["id"]))
        assert answers[0] == answers[1] and answers[0]["ok"]
        time.sleep(1.0)
        measured = [m for m in site.recorder.on("telemetry") if m.get("command_id") == good["id"]]
        assert len(measured) == 1
        # its id again with other content, properly signed: a replay
        _, other = site.request("measure", {"points": ["JRX-01"]}, req_id=good["id"])
        site.raw.publish(topic, json.dumps(other).encode())
        site.wait(lambda: site.results(good["id"])[2:])
        assert site.results(good["id"])[2]["error"]["code"] == "replayed"
        # a refused request was never stored: its id is free for a proper request
        _, retry = site.request("measure", {}, req_id=unsigned["id"])
        site.raw.publish(topic, json.dumps(retry).encode())
        assert site.wait(lambda: [a for a in site.results(unsigned["id"]) if a["ok"]])

        rc, doc, _ = site.cmd("status")
        assert doc["result"]["commands"]["refused"] == {"unsigned": 2, "bad_signature": 1,
                                                        "stale": 1, "retained": 1,
                                                        "replayed": 1}
        assert doc["result"]["commands"]["signed"] == "hmac-sha256"
        log = site.log.read_text()
        assert len(re.findall(r'"reason": "unsigned"', log)) == 1  # logged once per reason
        assert "9c1f4e7a" not in log  # the key is never logged
    finally:
        site.close()


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_an_ed25519_key_signs_with_the_platforms_private_key(tmp_path: Path, mosquitto) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    (tmp_path / "platform.pem").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "command.pub").write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    site = CommandSite(tmp_path, mosquitto.port, scale=60.0, commands='key_file = "command.pub"\n')
    try:
        rc, doc, err = site.cmd("time")
        assert rc == 2 and doc is None and "private key" in err
        rc, doc, err = site.cmd("time", "--key", str(tmp_path / "platform.pem"))
        assert rc == 0 and doc["ok"], err
        rc, doc, _ = site.cmd("status", "--key", str(tmp_path / "platform.pem"))
        assert doc["result"]["commands"]["signed"] == "ed25519"
    finally:
        site.close()
