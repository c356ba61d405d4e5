"""The session of a target with `encoding = "sparkplug"`: the gateway as a Sparkplug B edge node
(docs/contracts.md#sparkplug-b; topics and payloads in `sparkplug_node.py`).

At each connect: NBIRTH with the connection's `bdSeq`, then a DBIRTH per device, all QoS 0, not
retained. The will is the NDEATH with the same `bdSeq` (QoS 1, not retained), and a clean stop
publishes it before disconnecting. `bdSeq` goes up by one at each connect (0 .. 255, then 0) and
the next one is kept in `<state_dir>/sparkplug-<target>.json`, so a restarted gateway continues
it instead of repeating the number a host already saw die. An NCMD with `Node Control/Rebirth`
= true is answered with a new NBIRTH (same `bdSeq`, seq 0) and DBIRTHs.

Telemetry of kind values, realtime and measured from the outbox (any stored encoding) becomes
DDATA (NDATA for formula points), by exception as the telemetry module sends it. Five-minute
statistics are not sent here: a Sparkplug host historises the DDATA itself; those rows count as
delivered to this target. Everything else (alerts, faults, records, command results, manual
readings) goes as MineWatch JSON under the target's `prefix`, exactly as on a MineWatch target
(the side topic: events keep their `seq` and `event_id`, QoS 1 from the outbox). There is no
retained MineWatch `status` on a Sparkplug target: its NBIRTH and NDEATH say it.

With `sparkplug_primary_host` the node has a Primary Host Application (Sparkplug 3.0.0, "Edge
Node Session Establishment"): it subscribes to `spBv1.0/STATE/<host_id>` before it is born, and
is born only once that retained STATE says `{"online": true, ...}` on this connection; until
then this target sends nothing and the outbox holds its messages (telemetry and the side topic's
alerts alike), which go out after the births, oldest first. A STATE that says the host went
offline is answered with the NDEATH, and the node waits again, connected (one server: there is
no other to walk to), to be born again with the same bdSeq when the host is back. A STATE with
an older timestamp than one already seen is stale (a will that lost the race with a new birth)
and changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from gateway.config.model import MqttUplink, SiteConfig
from gateway.encodings.decode import decode
from gateway.outbox import PRIORITY_TELEMETRY, OutboxRow
from gateway.probation import write_atomically
from gateway.telemetry import catalog
from gateway.uplink.session import Publish, Sent, Session
from gateway.uplink.sparkplug_node import SparkplugNode

__all__ = ["SparkplugSession", "bdseq_path"]

log = logging.getLogger("minewatch.sparkplug")

_DATA_KINDS = ("values", "realtime", "measured")


def bdseq_path(state_dir: Path, target: str) -> Path:
    return state_dir / f"sparkplug-{target}.json"


class SparkplugSession(Session):
    will_retain = False  # Sparkplug: an NDEATH is never retained

    def __init__(self, cfg: SiteConfig, m: MqttUplink, now: Callable[[], float],
                 version: str = "0"):
        super().__init__(cfg, m, now, version)
        self.node = SparkplugNode(m.sparkplug_group or cfg.site.code, catalog(cfg))
        self.path = bdseq_path(cfg.gateway.state_dir, m.name)
        self.bdseq = self._load()  # the next connection's
        self.current: int | None = None  # this connection's
        self.born = False  # NBIRTH published on this connection (and no NDEATH since)
        self.rebirths = 0
        self.primary = m.sparkplug_primary_host  # "" for none
        self.host_online = False  # the primary host's STATE on this connection
        self.host_ts = -1  # the newest STATE timestamp seen: an older one is stale
        self.transcodes = False  # telemetry becomes DDATA here, not another payload
        # seq is given and the message published under one lock, so the wire order is seq
        # order: births come from paho's thread (on_connect), DDATA from the drain's
        self._lock = threading.Lock()
        self._publish: Publish | None = None

    def _load(self) -> int:
        try:
            n = json.loads(self.path.read_text(encoding="utf-8"))["next_bdseq"]
            if isinstance(n, int) and 0 <= n <= 255:
                return n
            raise ValueError(f"next_bdseq {n!r} is not in 0..255")
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s unreadable (%s): bdSeq starts at 0", self.path, exc,
                        extra={"event": "sparkplug_bdseq_reset", "target": self.m.name})
            return 0

    def _save(self) -> None:
        try:
            write_atomically(self.path, json.dumps({"next_bdseq": self.bdseq}) + "\n")
        except OSError as exc:  # the state directory's health says why; births go on anyway
            log.warning("cannot keep the next bdSeq in %s: %s", self.path, exc,
                        extra={"event": "sparkplug_bdseq_unsaved", "target": self.m.name})

    def _ms(self) -> int:
        return int(round(self.now() * 1000))

    def will(self) -> tuple[str, bytes] | None:
        return self.node.death(self.bdseq, self._ms())

    def next_will(self) -> tuple[str, bytes] | None:
        return self.will()

    def on_connect(self, publish: Publish) -> None:
        with self._lock:
            self._publish = publish
            self.current = self.bdseq
            self.born = False
            if self.primary:
                self.host_online = False  # until this server's retained STATE says otherwise
                log.info("Sparkplug %s connected; waiting for the primary host %s to be online "
                         "before the births", self.m.name, self.primary,
                         extra={"event": "sparkplug_waiting_for_host", "target": self.m.name,
                                "host": self.primary})
            else:
                self._births()
            # the will of the next CONNECT says the next number (the publisher sets it now)
            self.bdseq = (self.current + 1) % 256
            self._save()

    def _births(self) -> None:
        assert self._publish is not None and self.current is not None
        for topic_, payload in self.node.births(self.current, self._ms()):
            self._publish(topic_, payload, 0, False)
        self.born = True

    def ready(self) -> bool:
        return self.born

    def on_stop(self, publish: Publish) -> object | None:
        if self.current is None or not self.born:
            return None
        topic_, payload = self.node.death(self.current, self._ms())
        return publish(topic_, payload, 1, False)

    def subscriptions(self) -> list[tuple[str, Callable[[bytes], None]]]:
        subs = [(self.node.topic("NCMD"), self._command)]
        if self.primary:
            subs.append((f"spBv1.0/STATE/{self.primary}", self._host_state))
        return subs

    def _host_state(self, payload: bytes) -> None:
        """The primary host's STATE (Sparkplug 3.0.0: JSON `online` and `timestamp`)."""
        try:
            doc = json.loads(payload)
            online, ts = doc["online"], doc["timestamp"]
            if not isinstance(online, bool) or not isinstance(ts, int) or isinstance(ts, bool):
                raise ValueError(f"online {online!r}, timestamp {ts!r}")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("Sparkplug %s: STATE of %s ignored, not a Sparkplug 3.0 STATE (%s)",
                        self.m.name, self.primary, exc,
                        extra={"event": "sparkplug_state_invalid", "target": self.m.name})
            return
        with self._lock:
            if ts < self.host_ts:
                return  # stale: an older will or birth delivered after a newer one
            self.host_ts = ts
            self.host_online = online
            if online and not self.born and self._publish is not None \
                    and self.current is not None:
                log.info("Sparkplug %s: primary host %s online; NBIRTH (bdSeq %d) and %d "
                         "DBIRTH", self.m.name, self.primary, self.current,
                         len(self.node.devices), extra={"event": "sparkplug_host_online",
                                                        "target": self.m.name})
                self._births()
            elif not online and self.born:
                assert self._publish is not None and self.current is not None
                log.warning("Sparkplug %s: primary host %s offline; NDEATH, and this target's "
                            "messages wait in the outbox until it is back", self.m.name,
                            self.primary, extra={"event": "sparkplug_host_offline",
                                                 "target": self.m.name})
                self._publish(*self.node.death(self.current, self._ms()), 1, False)
                self.born = False

    def health(self) -> dict:
        if not self.primary:
            return {}
        return {"primary_host": {"id": self.primary, "online": self.host_online}}

    def _command(self, payload: bytes) -> None:
        if not self.node.is_rebirth(payload):
            return
        with self._lock:
            if self._publish is None or self.current is None or not self.born:
                return
            self.rebirths += 1
            log.info("Sparkplug rebirth requested on %s: NBIRTH (bdSeq %d) and %d DBIRTH",
                     self.m.name, self.current, len(self.node.devices),
                     extra={"event": "sparkplug_rebirth", "target": self.m.name})
            self._births()

    def send(self, row: OutboxRow, publish: Publish) -> Sent | None:
        """Telemetry: its DDATA messages (none for statistics); anything else as MineWatch JSON.

        One outbox row may speak of several devices, so it becomes several DDATA, each QoS 0
        as Sparkplug requires. The row is settled by the last of them: the publisher tracks that
        one publish (paho reports a QoS 0 message once it is written to the socket, in order
        after the ones before it), and a connection lost before it was written gives the row
        back to the window, to go again after the next connection's births (a DDATA of it that
        was written may then reach the host twice, with the same read time). A row with nothing
        to say here returns None and counts as delivered at once."""
        if row.priority != PRIORITY_TELEMETRY or not row.topic.endswith("/telemetry"):
            return super().send(row, publish)
        try:
            doc = decode(row.payload)
        except (ValueError, KeyError):
            return super().send(row, publish)  # not MineWatch telemetry: as it is
        kind = doc.get("kind")
        if kind == "stats":
            return None
        if kind not in _DATA_KINDS:
            return super().send(row, publish)
        with self._lock:
            messages = self.node.data(doc, self._ms())
            if not messages:
                return None
            last = None
            for topic_, payload in messages:
                info = publish(topic_, payload, 0, False)
                if last is None or _refused(last) is False:
                    last = info  # the first refusal, else the last message, speaks for all
            return Sent(last, 0)


def _refused(info: object) -> bool:
    from paho.mqtt.client import MQTT_ERR_NO_CONN, MQTT_ERR_SUCCESS

    return getattr(info, "rc", MQTT_ERR_SUCCESS) not in (MQTT_ERR_SUCCESS, MQTT_ERR_NO_CONN)

