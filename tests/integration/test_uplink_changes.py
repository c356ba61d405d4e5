"""An uplink's config changed across a restart while events wait in the outbox: each still
reaches its platform, once, in seq order, and nothing stays in the outbox for good.

`[uplink.mqtt]` takes a restart (a reload refuses it), so a changed target meets the backlog the
gateway stopped with. Each test runs a stretch of the rainstorm scenario twice with a real
Mosquitto and the real daemon: the first run under the old config, the second under the new.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.test_uplink_durability import Site, assert_all_delivered
from tests.support.services import (
    Mosquitto,
    MqttRecorder,
    free_port,
    require_binary,
    wait_for_line,
)


def _events(recorder: MqttRecorder) -> list[dict]:
    return recorder.on("alert") + recorder.on("fault")


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_new_prefix_carries_the_backlog_committed_under_the_old_one(tmp_path: Path) -> None:
    """The platform moves to `minewatch/v2` while its broker is down: the alerts committed under
    v1 during the outage go out under v2, where the platform now reads (they went to v1's
    topics before, which nobody reads any more, and left the outbox on the broker's PUBACK)."""
    mqtt = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mosquitto",
                     free_port(), persistent=True)  # down through the first run
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=17.0)
    gw = site.gateway(until_h=23.0)  # blue (about 20.5 h) is committed, nothing is sent
    platform = None
    try:
        assert gw.wait(timeout=120) == 0, site.logs()
        backlog = site.committed()
        assert backlog and not any(c["delivered_at"] for c in backlog)
        site.cfg.write_text(site.cfg.read_text(encoding="utf-8").replace(
            'prefix = "minewatch/v1"', 'prefix = "minewatch/v2"'), encoding="utf-8")
        mqtt.start()
        platform = MqttRecorder(mqtt.port, "#")
        gw = site.gateway(until_h=30.0)
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        if platform is not None:
            platform.close()
        mqtt.stop()
    committed = site.committed()
    events = _events(platform)
    topics = {t.rpartition("/")[0] for t, _, _ in platform.messages if "/receipt" not in t}
    assert topics == {"minewatch/v2/130825-TP001/gw01"}, topics
    assert [m["seq"] for m in events] == list(range(1, len(committed) + 1))
    assert_all_delivered(events, committed)
    assert all(c["confirmed_at"] for c in committed)  # the platform's receipts found them
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_receipts_switched_off_release_what_waited_for_them(tmp_path: Path) -> None:
    """A platform that never sent receipts: the site turns `receipts` off. What its broker had
    PUBACKed and waited for a receipt leaves the outbox at the next start instead of staying
    there for good (no longer sent again, and never confirmed)."""
    mqtt = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mosquitto",
                     free_port(), persistent=True)
    mqtt.start()
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=17.0)
    platform = MqttRecorder(mqtt.port, "minewatch/v1/#", receipts=False)
    gw = site.gateway(until_h=23.0)
    try:
        assert gw.wait(timeout=120) == 0, site.logs()
        with site.outbox() as db:
            waiting = db.execute("SELECT count(*) FROM outbox WHERE priority = 0 AND sent IS "
                                 "NOT NULL").fetchone()[0]
        assert waiting >= 1, site.logs()  # blue, PUBACKed and kept for a receipt
        site.cfg.write_text(site.cfg.read_text(encoding="utf-8").replace(
            "receipts = true", "receipts = false"), encoding="utf-8")
        gw = site.gateway(until_h=30.0)
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        platform.close()
        mqtt.stop()
    committed = site.committed()
    events = _events(platform)
    assert [m["seq"] for m in events] == list(range(1, len(committed) + 1))  # once each
    assert_all_delivered(events, committed)
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM unconfirmed").fetchone()[0] == 0


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_stale_retained_receipt_confirms_nothing_that_was_never_sent(tmp_path: Path) -> None:
    """The broker still keeps the receipt an older history's platform left retained, without
    `seq_event_id` (the schema allows that): "every event up to seq 1". A gateway with a new
    state directory committed seq 1 while its broker was down, and the broker refuses its
    alerts at first (ACL). The old receipt, handed over at the subscribe, must not count seq 1
    as delivered: once the broker takes alerts, seq 1 is sent (it never was before)."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite minewatch/v1/+/+/status\ntopic readwrite minewatch/v1/+/+/"
                   "telemetry\ntopic readwrite minewatch/v1/+/+/health\ntopic readwrite "
                   "minewatch/v1/+/+/receipt\ntopic read #\n")
    mqtt = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mosquitto",
                     free_port(), f"acl_file {acl}\n")
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=17.0)
    gw = site.gateway(until_h=23.0)  # the broker is down: blue is committed, not sent
    platform = None
    try:
        assert gw.wait(timeout=120) == 0, site.logs()
        assert site.committed(), site.logs()
        mqtt.start()
        _retain(mqtt.port, "minewatch/v1/130825-TP001/gw01/receipt",
                {"schema": "minewatch/receipt/1", "seq": 1})  # another history's
        platform = MqttRecorder(mqtt.port, "minewatch/v1/#")
        gw = site.gateway(until_h=30.0)
        wait_for_line(tmp_path / "gateway-2.log", "Not authorized", timeout=60)
        acl.write_text("topic readwrite minewatch/v1/#\n")
        mqtt.reload()
        assert gw.wait(timeout=120) == 0, site.logs()
        time.sleep(1.0)
    finally:
        if gw.poll() is None:
            gw.kill()
        site.close()
        if platform is not None:
            platform.close()
        mqtt.stop()
    committed = site.committed()
    assert_all_delivered(_events(platform), committed)
    assert all(c["confirmed_at"] for c in committed)  # by the platform's own receipts
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0] == 0


def _retain(port: int, topic: str, doc: dict) -> None:
    """Leave `doc` retained on `topic`, as a platform did long ago."""
    from paho.mqtt import publish

    publish.single(topic, json.dumps(doc), qos=1, retain=True, hostname="127.0.0.1", port=port)
