"""What a target's encoding does with its MQTT session besides draining the outbox: the will the
broker keeps, what it says at each connect and at a clean stop, and how an outbox message goes on
the wire (its topic under the target's prefix, its payload, its MQTT 5 properties).

`MineWatchSession` is the JSON contract of docs/contracts.md#topics: a retained `status` that says
"online" at each connect and "offline" at a clean stop and as the will; events stamped with
`sent_at` at every (re)transmission; a command result's Correlation Data. The outbox holds every
topic under the first target's prefix, and telemetry in the encoding the first target had when
it was committed; each target's session moves it under its own prefix and writes telemetry that
is not in its own `encoding` again in its own (`gateway/encodings/transcode.py`): another
target's, or its own before a restart changed it.

An encoding with a session life of its own (Sparkplug B, `sparkplug.py`: an NBIRTH at each
connect with the next `bdSeq`, an NDEATH as the will, a rebirth on an NCMD) subclasses `Session`:
`will`, `next_will` and `on_connect` give its birth and death, `send` puts an outbox row on the
wire as one or several publishes, and `subscriptions` names the topics it answers (the publisher
subscribes at each connect and hands it what arrives). The publisher itself (window, PUBACKs,
cursors, receipts) stays the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.alerts.encoder import status_payload, topic, with_sent_at
from gateway.config.model import MqttUplink, SiteConfig
from gateway.encodings.decode import encoded_as
from gateway.outbox import PRIORITY_EVENT, PRIORITY_TELEMETRY, OutboxRow

__all__ = ["MineWatchSession", "Publish", "Sent", "Session"]

# publish(topic, payload, qos, retain[, properties]): the paho client's publish, returning its
# message info
Publish = Callable[..., object]


@dataclass(frozen=True)
class Sent:
    """The publish that settles an outbox row on this target, and its QoS: at 1 its PUBACK, at
    0 its write to the socket (paho reports both as on_publish)."""

    info: object  # paho's MQTTMessageInfo
    qos: int


class Session:
    """The default: no will, nothing said at connect or stop, messages as the outbox has them
    under the target's prefix."""

    def __init__(self, cfg: SiteConfig, m: MqttUplink, now: Callable[[], float],
                 version: str = "0"):
        self.cfg = cfg
        self.m = m
        self.now = now
        self.version = version
        home = cfg.mqtt.prefix if cfg.mqtt is not None else m.prefix
        self.home = topic(home, cfg.site.code, cfg.gateway.id, "")  # the outbox's topics
        self.base = topic(m.prefix, cfg.site.code, cfg.gateway.id, "")  # this target's
        self.transcodes = True  # telemetry in another encoding is written again in its own
        self._transcoder: Callable[[bytes], bytes] | None = None

    def topic(self, stored: str) -> str:
        """An outbox topic under this target's prefix (a Response Topic elsewhere stays)."""
        return self.base + stored[len(self.home):] if stored.startswith(self.home) else stored

    will_retain = True  # how the broker keeps the will (MineWatch's status is retained)

    def will(self) -> tuple[str, bytes] | None:
        return None

    def next_will(self) -> tuple[str, bytes] | None:
        """Right after on_connect: a will for the next CONNECT, when it changes (None: the same)."""
        return None

    def on_connect(self, publish: Publish) -> None:
        """Right after each CONNACK, before the messages paho sends again."""

    def on_stop(self, publish: Publish) -> object | None:
        """Before a clean disconnect; what it returns is awaited (a PUBACK) for a few seconds."""
        return None

    def subscriptions(self) -> list[tuple[str, Callable[[bytes], None]]]:
        return []

    def ready(self) -> bool:
        """Whether messages may go now (a Sparkplug node waits for its primary host)."""
        return True

    def health(self) -> dict:
        """What the target's health says of its session, besides the publisher's figures."""
        return {}

    def send(self, row: OutboxRow, publish: Publish) -> Sent | None:
        """Publish one outbox message on this target; what settles it (None: nothing to send
        here, it counts as delivered)."""
        topic_, payload, properties = self.message(row)
        return Sent(publish(topic_, payload, row.qos, False, properties), row.qos)

    def transcode(self, payload: bytes) -> bytes:
        """Telemetry of another encoding in this target's (its encoder made at first need)."""
        if self._transcoder is None:
            from gateway.encodings import encoder
            from gateway.encodings.transcode import Transcoder
            from gateway.telemetry import catalog

            site = catalog(self.cfg)
            self._transcoder = Transcoder(site, encoder(self.m.encoding, site, self.m.digits))
        return self._transcoder(payload)

    def message(self, row: OutboxRow) -> tuple[str, bytes, object | None]:
        """(topic, payload, MQTT 5 properties) of one outbox message on this target."""
        payload = row.payload
        if row.priority == PRIORITY_EVENT and row.seq is not None:  # an event, not a result
            payload = with_sent_at(payload, self.now())
        elif row.priority == PRIORITY_TELEMETRY and self.transcodes \
                and row.topic.endswith("/telemetry") and encoded_as(payload) != self.m.encoding:
            payload = self.transcode(payload)
        properties = None
        if row.correlation is not None and self.m.protocol == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = row.correlation
        return self.topic(row.topic), payload, properties


class MineWatchSession(Session):
    """docs/contracts.md#topics: the retained status, online and offline, and the will."""

    @property
    def status_topic(self) -> str:
        return self.base + "status"

    def _status(self, state: str) -> bytes:
        return status_payload(state, self.cfg.site.code, self.cfg.gateway.id, self.now(),
                              self.version)

    def will(self) -> tuple[str, bytes] | None:
        return self.status_topic, self._status("offline")

    def on_connect(self, publish: Publish) -> None:
        publish(self.status_topic, self._status("online"), 1, True)

    def on_stop(self, publish: Publish) -> object | None:
        return publish(self.status_topic, self._status("offline"), 1, True)
