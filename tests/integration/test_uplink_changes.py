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


def _finish(site: Site, platform: MqttRecorder | None, mqtt: Mosquitto) -> None:
    """Stop what a test started, whatever state it stopped in (`Site.close` its gateways)."""
    site.close()
    if platform is not None:
        platform.close()
    mqtt.stop()


def _run_to_end(site: Site, until_h: float) -> None:
    """The gateway's run up to `until_h` of the scenario, to its clean end."""
    gw = site.gateway(until_h=until_h)
    assert gw.wait(timeout=120) == 0, site.logs()
    time.sleep(1.0)  # the platform's last deliveries


def _events_left(site: Site) -> int:
    """Events still in the outbox (every one should have left once its platforms have it)."""
    with site.outbox() as db:
        return db.execute("SELECT count(*) FROM outbox WHERE priority = 0").fetchone()[0]


# the broker takes everything of the gateway's but its events: a platform that cannot have
# them yet (the broker stays up, so its port is never free for another process to take)
NO_EVENTS = ("topic readwrite +/+/+/+/status", "topic readwrite +/+/+/+/telemetry",
             "topic readwrite +/+/+/+/health", "topic readwrite +/+/+/+/receipt", "topic read #")


def _broker(tmp_path: Path, *acl: str) -> tuple[Mosquitto, Path]:
    path = tmp_path / "acl"
    path.write_text("\n".join(acl) + "\n")
    mqtt = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), tmp_path / "mosquitto",
                     free_port(), f"acl_file {path}\n")
    mqtt.start()
    return mqtt, path


def _reconfigured(site: Site, mqtt: Mosquitto, acl: Path, change: tuple[str, str], opened: str,
                  listen: str) -> MqttRecorder:
    """Between the runs: the site's config changed (`change`: old text, new), the broker
    opened to everything under `opened`, and a platform listening on `listen`."""
    site.cfg.write_text(site.cfg.read_text(encoding="utf-8").replace(*change), encoding="utf-8")
    acl.write_text(f"topic readwrite {opened}/#\ntopic read #\n")
    mqtt.reload()
    return MqttRecorder(mqtt.port, listen)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_new_prefix_carries_the_backlog_committed_under_the_old_one(tmp_path: Path) -> None:
    """The platform moves to `minewatch/v2` while alerts wait in the outbox (its broker did not
    take them): they go out under v2, where the platform now reads and the broker allows. They
    went to v1's topics before, where nobody reads any more (or, as here, the broker refuses
    them for good and every later alert waits behind them)."""
    mqtt, acl = _broker(tmp_path, *NO_EVENTS)
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=17.0)
    gw = site.gateway(until_h=23.0)  # blue (about 20.5 h) is committed, not delivered
    platform = None
    try:
        assert gw.wait(timeout=120) == 0, site.logs()
        backlog = site.committed()
        assert backlog and not any(c["delivered_at"] for c in backlog)
        platform = _reconfigured(site, mqtt, acl, ('prefix = "minewatch/v1"',
                                                   'prefix = "minewatch/v2"'), "minewatch/v2", "#")
        _run_to_end(site, 30.0)
    finally:
        _finish(site, platform, mqtt)
    committed = site.committed()
    events = _events(platform)
    topics = {t.rpartition("/")[0] for t, _, _ in platform.messages
              if t.endswith(("/alert", "/fault"))}
    assert topics == {"minewatch/v2/130825-TP001/gw01"}, topics
    assert [m["seq"] for m in events] == list(range(1, len(committed) + 1))
    assert_all_delivered(events, committed)
    assert all(c["confirmed_at"] for c in committed)  # the platform's receipts found them
    assert _events_left(site) == 0


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
        _run_to_end(site, 30.0)
    finally:
        _finish(site, platform, mqtt)
    committed = site.committed()
    events = _events(platform)
    assert [m["seq"] for m in events] == list(range(1, len(committed) + 1))  # once each
    assert_all_delivered(events, committed)
    assert _events_left(site) == 0
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM unconfirmed").fetchone()[0] == 0


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_stale_retained_receipt_confirms_nothing_that_was_never_sent(tmp_path: Path) -> None:
    """The broker still keeps the receipt an older history's platform left retained, without
    `seq_event_id` (the schema allows that): "every event up to seq 1". A gateway with a new
    state directory committed seq 1, which its broker refuses (ACL) then and at first after a
    restart. The old receipt, handed over at the subscribe, must not count seq 1
    as delivered: once the broker takes alerts, seq 1 is sent (it never was before)."""
    mqtt, acl = _broker(tmp_path, *NO_EVENTS)
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=17.0)
    gw = site.gateway(until_h=23.0)  # blue is committed, the broker refuses it
    platform = None
    try:
        assert gw.wait(timeout=120) == 0, site.logs()
        assert site.committed(), site.logs()
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
        _finish(site, platform, mqtt)
    committed = site.committed()
    assert_all_delivered(_events(platform), committed)
    assert all(c["confirmed_at"] for c in committed)  # by the platform's own receipts
    assert _events_left(site) == 0


def _retain(port: int, topic: str, doc: dict) -> None:
    """Leave `doc` retained on `topic`, as a platform did long ago."""
    from paho.mqtt import publish

    publish.single(topic, json.dumps(doc), qos=1, retain=True, hostname="127.0.0.1", port=port)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_new_encoding_reaches_the_telemetry_committed_under_the_old_one(tmp_path: Path) -> None:
    """The platform moves from the full JSON to the compact encoding while telemetry waits in
    the outbox (its broker did not take it): the waiting telemetry goes out compact too, as the
    platform now reads it. It went out in the full JSON before, which that platform no longer
    parses, an hour of a site's values lost to it."""
    mqtt, acl = _broker(tmp_path, *(f"topic readwrite +/+/+/+/{kind}" for kind in (
        "status", "alert", "fault", "health", "receipt")), "topic read #")
    site = Site(tmp_path, mqtt.port, scale=3000.0, start_h=17.0, replace={
        'protocol = "5"': 'protocol = "5"\nreconnect_max = "2s"\nencoding = "json"'})
    gw = site.gateway(until_h=19.0)
    platform = None
    try:
        assert gw.wait(timeout=120) == 0, site.logs()
        with site.outbox() as db:
            waiting = db.execute("SELECT count(*) FROM outbox WHERE priority != 0 AND topic "
                                 "LIKE '%/telemetry'").fetchone()[0]
        assert waiting >= 5, site.logs()  # two hours of telemetry, in the full JSON
        platform = _reconfigured(site, mqtt, acl, ('encoding = "json"', 'encoding = "compact"'),
                                 "minewatch/v1", "minewatch/v1/+/+/telemetry")
        _run_to_end(site, 23.0)
    finally:
        _finish(site, platform, mqtt)
    wire = platform.telemetry_wire
    assert len(wire) >= waiting, (len(wire), waiting)  # the backlog, and what the restart added
    assert all(p.startswith(b'{"schema":"minewatch/telemetry/2"') for p in wire), [
        p[:40] for p in wire if not p.startswith(b'{"schema":"minewatch/telemetry/2"')]
    observed = sorted({p["observed_at"] for d in platform.on("telemetry") if d["kind"] != "stats"
                       for p in d["points"] if p.get("observed_at")})
    assert site.hours(observed[0]) < 17.5, site.hours(observed[0])  # from the first run's start
    with site.outbox() as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE topic LIKE '%/telemetry'"
                          ).fetchone()[0] == 0
