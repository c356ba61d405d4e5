"""MQTT uplink: drains the outbox to the city platform's broker with paho-mqtt 2.x.

One message is in flight at a time, in outbox order (alerts and faults first, then telemetry), and
a row leaves the outbox only after its PUBACK. Under MQTT 5 a PUBACK reason code of 0x80 or more is
a rejection (for example "not authorized" from a broker ACL): the event stays, the log says why,
and it is retried with backoff. MQTT 3.1.1 has no such code, so a broker that silently drops a
denied publish cannot be detected there. The retained `status` topic says "online" after each
connect and the broker's last will says "offline" when the gateway vanishes.

With `receipts = true` it also subscribes to `<prefix>/<site>/<gateway>/receipt`, the only topic
it reads, and hands each platform receipt to the outbox (`gateway/outbox_receipts.py`); a connect
on which the broker has no session for us (it lost its state) sends every unconfirmed event again
at once instead of after `receipt_timeout`.

With `[commands] enabled` it also subscribes to `<prefix>/<site>/<gateway>/cmd/+` and hands each
request, with its MQTT 5 Response Topic and Correlation Data, to the command service
(`gateway/commands/service.py`); a result leaves the outbox like an event, carrying the
request's Correlation Data when it has one.

Reconnects back off from `reconnect_min` to `reconnect_max`, doubling, with jitter: each wait is
half its step plus a random part of the other half, so the gateways a broker restart dropped at
the same instant come back spread out instead of all at once (`benchmarks/fleet.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.alerts.encoder import parse_receipt, status_payload, topic, with_sent_at
from gateway.config.model import MqttUplink, SiteConfig
from gateway.outbox import PRIORITY_EVENT, Outbox, OutboxRow
from gateway.uplink.client import diagnose, make_client

__all__ = ["Incoming", "MqttPublisher"]

log = logging.getLogger("minewatch.mqtt")


@dataclass(frozen=True)
class Incoming:
    """A message on a topic the gateway subscribed to, as the loop thread gets it."""

    topic: str
    payload: bytes
    retain: bool = False
    response_topic: str | None = None  # MQTT 5 properties of a request
    correlation: bytes | None = None


class MqttPublisher:
    def __init__(self, cfg: SiteConfig, outbox: Outbox, clock_now: Callable[[], float],
                 version: str = "0", ack_timeout: float = 10.0):
        assert cfg.mqtt is not None
        self.cfg = cfg
        self.m: MqttUplink = cfg.mqtt
        self.outbox = outbox
        self.now = clock_now
        self.version = version
        self.ack_timeout = ack_timeout
        self.status_topic = topic(self.m.prefix, cfg.site.code, cfg.gateway.id, "status")
        self.receipt_topic = topic(self.m.prefix, cfg.site.code, cfg.gateway.id, "receipt")
        self.receipts_taken = 0
        self.bad_receipts = 0
        self.connected = asyncio.Event()
        self.wakeup = asyncio.Event()
        self.published = 0
        self.rejected = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, asyncio.Future] = {}
        self._early: dict[int, tuple[float, str | None]] = {}
        self._client = None
        self._stopping = False
        self._failures = 0
        self._last_failure = ""
        self._subscriptions: list[tuple[str, Callable[[Incoming], None]]] = []
        self._attempt = 0  # reconnect attempts since the last connection: the backoff's step

    def subscribe(self, topic_filter: str, handler: Callable[[Incoming], None]) -> None:
        """Subscribe to `topic_filter` at QoS 1 at every connect (before `start`); `handler`
        gets each message in the loop thread."""
        self._subscriptions.append((topic_filter, handler))

    # -- paho callbacks (network thread) -------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._log_failure(f"the broker refused the connection: {reason_code}",
                              "mqtt_refused")
            return
        self._failures = 0
        self._last_failure = ""
        self._attempt = 0
        log.info("MQTT connected to %s:%d", self.m.host, self.m.port,
                 extra={"event": "mqtt_connected"})
        client.publish(self.status_topic, status_payload("online", self.cfg.site.code,
                       self.cfg.gateway.id, self.now(), self.version), qos=1, retain=True)
        if self.m.receipts:
            client.subscribe(self.receipt_topic, qos=1)
            if not flags.session_present:
                self._call(self.outbox.resend_unconfirmed)
        for topic_filter, _ in self._subscriptions:
            if self.m.protocol == "5":
                from paho.mqtt.subscribeoptions import SubscribeOptions

                # Retain As Published: a request published retained says so on live delivery
                # too, not only when a later subscribe delivers it again
                client.subscribe(topic_filter, options=SubscribeOptions(
                    qos=1, retainAsPublished=True))
            else:
                client.subscribe(topic_filter, qos=1)
        self._call(self.connected.set)
        self._call(self.wakeup.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        client.reconnect_delay_set(self.reconnect_delay(), self.m.reconnect_max)
        if not self._stopping and self.connected.is_set():
            log.warning("MQTT disconnected: %s", reason_code,
                        extra={"event": "mqtt_disconnected", "reason": str(reason_code)})
        self._call(self.connected.clear)
        with self._lock:
            pending, self._pending = self._pending, {}
            self._early.clear()
        for fut in pending.values():
            self._call(_settle, fut, "connection lost before PUBACK")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        value = getattr(reason_code, "value", 0)
        error = None if value < 0x80 else f"broker rejected the publish: {reason_code} (0x{value:02X})"
        with self._lock:
            fut = self._pending.pop(mid, None)
            if fut is None:
                # the PUBACK beat the registration of its future (see _publish)
                self._early[mid] = (time.monotonic(), error)
                return
        self._call(_settle, fut, error)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.receipt_topic:
            if msg.payload:
                self._call(self._receipt, bytes(msg.payload))
            return
        from paho.mqtt.client import topic_matches_sub

        for topic_filter, handler in self._subscriptions:
            if topic_matches_sub(topic_filter, msg.topic):
                props = getattr(msg, "properties", None)
                response = getattr(props, "ResponseTopic", None) if props else None
                correlation = getattr(props, "CorrelationData", None) if props else None
                self._call(handler, Incoming(msg.topic, bytes(msg.payload), bool(msg.retain),
                                             response, bytes(correlation) if correlation
                                             is not None else None))
                return

    def _receipt(self, payload: bytes) -> None:
        """A platform receipt (in the loop thread, where the outbox is written)."""
        try:
            r = parse_receipt(payload, self.cfg.site.code, self.cfg.gateway.id)
        except ValueError as exc:
            self.bad_receipts += 1
            if self.bad_receipts in (1, 10) or self.bad_receipts % 100 == 0:
                log.warning("receipt on %s ignored: %s (%d bad so far)", self.receipt_topic, exc,
                            self.bad_receipts, extra={"event": "receipt_invalid",
                                                      "reason": str(exc)})
            return
        self.receipts_taken += 1
        confirmed = self.outbox.receipt(r.seq, r.event_ids, r.seq_event_id)
        log.debug("receipt up to seq %s (+%d ids): %d events confirmed", r.seq,
                  len(r.event_ids), confirmed, extra={"event": "receipt", "seq": r.seq})

    def _on_connect_fail(self, client, userdata) -> None:
        client.reconnect_delay_set(self.reconnect_delay(), self.m.reconnect_max)
        # paho does not say why; find out with one plain attempt (this is paho's network thread,
        # which is waiting to retry anyway)
        self._log_failure(diagnose(self.m), "mqtt_connect_failed")

    def reconnect_delay(self) -> float:
        """Seconds before the next reconnect: the step doubles from reconnect_min up to
        reconnect_max; half of it is waited, the other half at random ("equal jitter"). Set
        through paho's reconnect_delay_set, which its loop reads for the next wait."""
        step = min(self.m.reconnect_max, self.m.reconnect_min * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return step / 2 + random.uniform(0.0, step / 2)

    def _log_failure(self, reason: str, event: str) -> None:
        """One clear line per new reason, then every 20th repeat, never a secret."""
        with self._lock:
            self._failures += 1
            repeat = reason == self._last_failure and self._failures % 20 != 0
            self._last_failure = reason
        if not repeat:
            log.error("MQTT %s:%d: %s (attempt %d; retrying with backoff up to %g s)",
                      self.m.host, self.m.port, reason, self._failures, self.m.reconnect_max,
                      extra={"event": event, "reason": reason, "attempt": self._failures})

    def _call(self, fn, *args) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    # -- lifecycle -----------------------------------------------------------------------------
    def _make_client(self):
        client = make_client(self.m, self.m.client_id, persistent=True, will=(
            self.status_topic, status_payload("offline", self.cfg.site.code, self.cfg.gateway.id,
                                              self.now(), self.version)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        client.reconnect_delay_set(max(1, int(self.m.reconnect_min)), int(self.m.reconnect_max))
        return client

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = self._make_client()
        kwargs = {}
        if self.m.protocol == "5":
            from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            # a persistent session: the broker keeps it for a day across uplink outages
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 86400
            kwargs["clean_start"] = MQTT_CLEAN_START_FIRST_ONLY
            kwargs["properties"] = props
        self._client.connect_async(self.m.host, self.m.port, keepalive=self.m.keepalive, **kwargs)
        self._client.loop_start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Say 'offline' on the status topic, then disconnect (a clean disconnect fires no will)."""
        if self._client is None:
            return
        if self.connected.is_set():
            info = self._client.publish(self.status_topic, status_payload(
                "offline", self.cfg.site.code, self.cfg.gateway.id, self.now(), self.version),
                qos=1, retain=True)
            deadline = time.monotonic() + timeout
            while not info.is_published() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def publish_now(self, topic_: str, doc: dict, qos: int = 0) -> bool:
        """Current-state messages (health) and refusals of requests that proved nothing: sent
        if connected, never queued (stale is useless, and junk must not fill the disk)."""
        if self._client is not None and self.connected.is_set():
            self._client.publish(topic_, json.dumps(doc, ensure_ascii=False,
                                                    separators=(",", ":")).encode(), qos=qos)
            return True
        return False

    def notify(self) -> None:
        """Something new is in the outbox."""
        self.wakeup.set()

    async def run(self) -> None:
        """Drain the outbox forever, one acknowledged message at a time."""
        backoff = self.m.reconnect_min
        while True:
            await self.connected.wait()
            rows = self.outbox.peek(1)
            if not rows:
                self.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), timeout=1.0)
                continue
            row = rows[0]
            error = await self._publish(row)
            if error is None:
                self.outbox.ack(row)
                self.published += 1
                backoff = self.m.reconnect_min
                continue
            self.outbox.record_failure(row, error)
            if "rejected" in error:
                self.rejected += 1
            log.warning("message %s (seq %s) not delivered: %s; kept in the outbox, retry in "
                        "%.1f s", row.event_id or row.id, row.seq, error, backoff,
                        extra={"event": "publish_failed", "seq": row.seq, "error": error})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.m.reconnect_max)

    async def _publish(self, row: OutboxRow) -> str | None:
        assert self._loop is not None and self._client is not None
        payload = row.payload
        if row.priority == PRIORITY_EVENT and row.seq is not None:  # an event, not a result
            payload = with_sent_at(payload, self.now())
        properties = None
        if row.correlation is not None and self.m.protocol == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = row.correlation
        fut: asyncio.Future = self._loop.create_future()
        # paho calls on_publish while holding its own message lock, so ours is never held across
        # a paho call; a PUBACK that arrives before the future is registered waits in _early
        started = time.monotonic()
        info = self._client.publish(row.topic, payload, qos=row.qos, properties=properties)
        if info.rc != 0:
            return f"publish refused by the client: {info.rc}"
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is not None and early[0] >= started:
                return early[1]
            self._pending[info.mid] = fut
        try:
            return await asyncio.wait_for(fut, timeout=self.ack_timeout)
        except TimeoutError:
            with self._lock:
                self._pending.pop(info.mid, None)
            return f"no PUBACK within {self.ack_timeout:g} s"


def _settle(fut: asyncio.Future, error: str | None) -> None:
    if not fut.done():
        fut.set_result(error)
