"""MQTT uplink: one northbound target (`[uplink.mqtt]`, or one of several `[[uplink.mqtt]]`)
draining the outbox to its broker with paho-mqtt 2.x.

Up to `max_inflight` messages are published and waiting for their PUBACK at once, in outbox
order (alerts and faults first, then telemetry), and a row leaves the outbox for this target only
after its own PUBACK (paho gives each message its packet id, and `on_publish` that id); which
message may go when is `window.py`'s (alerts keep their seq order through a broker restart and a
refusal, and never wait behind telemetry). paho keeps what it published until the PUBACK and
sends it again after a reconnect, so the publisher never publishes a copy of its own. Under
MQTT 5 a PUBACK reason code of 0x80 or more is a rejection (for example "not authorized" from a
broker ACL): the event stays, the log says why, and it is retried with backoff. MQTT 3.1.1 has
no such code, so a broker that silently drops a denied publish cannot be detected there. What
the target says at each connect and as its will (the retained `status`, "online" and "offline")
and how a message goes on its wire is its session's (`session.py`).

With `receipts = true` it also subscribes to its `<prefix>/<site>/<gateway>/receipt`, the only
topic it reads, and hands each platform receipt to the outbox (`gateway/outbox_receipts.py`) for
this target; a connect on which the broker has no session for us (it lost its state) sends every
event unconfirmed there again at once instead of after `receipt_timeout`.

With `[commands] enabled` the first target also subscribes to `<prefix>/<site>/<gateway>/cmd/+`
and hands each request, with its MQTT 5 Response Topic and Correlation Data, to the command
service (`gateway/commands/service.py`); a result leaves the outbox like an event, on that
target only, carrying the request's Correlation Data when it has one.

Reconnects back off from `reconnect_min` to `reconnect_max`, doubling, with jitter: each wait is
half its step plus a random part of the other half, so the gateways a broker restart dropped at
the same instant come back spread out instead of all at once (`benchmarks/fleet.py`).

paho runs the connection in a thread of its own, which an error escaping a callback (ours, or
paho's) ends for good: nothing is published or reconnected after it, and nothing else would say
so. The thread is watched: its end on an error is logged with the traceback (`mqtt_loop_failed`),
and the target connects again on a new thread at once; paho keeps the messages in flight and sends
them again, so the outbox loses nothing (`network_restarts` in the target's health).
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

from gateway.alerts.encoder import parse_receipt
from gateway.config.model import MqttUplink, SiteConfig
from gateway.outbox import Outbox, OutboxRow
from gateway.uplink.client import diagnose, make_client
from gateway.uplink.session import MineWatchSession, Sent, Session
from gateway.uplink.window import Window

__all__ = ["Incoming", "MqttPublisher"]

log = logging.getLogger("minewatch.mqtt")

# the running publishers, asked in turn whether a thread that ended on an error was theirs
_WATCHED: list[MqttPublisher] = []


def _watch_threads() -> None:
    """Chain a hook onto `threading.excepthook`, once: a watched paho thread that ends on an
    error is handed to its publisher, every other thread goes on to the previous hook."""
    previous = threading.excepthook
    if getattr(previous, "minewatch_mqtt", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        owner = next((p for p in list(_WATCHED) if p.owns(args.thread)), None)
        if owner is None:
            previous(args)
        else:
            owner.network_died(args)

    hook.minewatch_mqtt = True  # type: ignore[attr-defined]
    threading.excepthook = hook


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
                 version: str = "0", ack_timeout: float = 10.0,
                 target: MqttUplink | None = None, session: Session | None = None):
        m = target if target is not None else cfg.mqtt
        assert m is not None
        self.cfg = cfg
        self.m: MqttUplink = m
        self.name = m.name
        self.outbox = outbox
        self.now = clock_now
        self.version = version
        self.ack_timeout = ack_timeout  # a PUBACK later than this is logged (and still awaited)
        if session is None and m.encoding == "sparkplug":
            from gateway.uplink.sparkplug import SparkplugSession

            session = SparkplugSession(cfg, m, clock_now, version)
        self.session = session if session is not None else MineWatchSession(
            cfg, m, clock_now, version)
        self.status_topic = self.session.base + "status"
        self.receipt_topic = self.session.base + "receipt"
        self.receipts_taken = 0
        self.bad_receipts = 0
        self.connected = asyncio.Event()
        self.wakeup = asyncio.Event()
        self.published = 0
        self.rejected = 0
        self.network_restarts = 0  # paho's thread ended on an error and was started again
        self._connect_kwargs: dict = {}
        self._network: threading.Thread | None = None  # paho's thread, once it called us back
        self.window = Window(m.max_inflight, m.reconnect_min, m.reconnect_max)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, object] = {}  # packet id -> the window's key of the message
        self._early: dict[int, tuple[float, str | None]] = {}
        self._answers: list[tuple[object, str | None]] = []
        self._qos0: set = set()  # window keys settled by a QoS 0 publish (Sparkplug's DDATA)
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
        self._network = threading.current_thread()
        if reason_code.is_failure:
            self._log_failure(f"the broker refused the connection: {reason_code}",
                              "mqtt_refused")
            return
        self._failures = 0
        self._last_failure = ""
        self._attempt = 0
        log.info("MQTT %s connected to %s:%d", self.name, self.m.host, self.m.port,
                 extra={"event": "mqtt_connected", "target": self.name})
        if self.m.receipts:
            client.subscribe(self.receipt_topic, qos=1)
            if not flags.session_present:
                self._call(self.outbox.resend_unconfirmed, self.name)
        filters = [f for f, _ in self._subscriptions] + [f for f, _ in
                                                          self.session.subscriptions()]
        for topic_filter in filters:
            if self.m.protocol == "5":
                from paho.mqtt.subscribeoptions import SubscribeOptions

                # Retain As Published: a request published retained says so on live delivery
                # too, not only when a later subscribe delivers it again
                client.subscribe(topic_filter, options=SubscribeOptions(
                    qos=1, retainAsPublished=True))
            else:
                client.subscribe(topic_filter, qos=1)
        # after the subscriptions: a Sparkplug node listens for NCMD before its NBIRTH
        self.session.on_connect(_publisher(client))
        will = self.session.next_will()
        if will is not None:  # paho sends it with the next CONNECT (Sparkplug: the next bdSeq)
            client.will_set(will[0], will[1], qos=1, retain=self.session.will_retain)
        self._call(self._release_unwritten)
        self._call(self.window.reconnected, time.monotonic())
        self._call(self.connected.set)
        self._call(self.wakeup.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        client.reconnect_delay_set(self.reconnect_delay(), self.m.reconnect_max)
        # what is in flight stays with paho, which sends it again after the reconnect
        if not self._stopping and self.connected.is_set():
            log.warning("MQTT %s disconnected: %s", self.name, reason_code,
                        extra={"event": "mqtt_disconnected", "reason": str(reason_code),
                               "target": self.name})
        self._call(self.connected.clear)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        value = getattr(reason_code, "value", 0)
        error = None if value < 0x80 else f"broker rejected the publish: {reason_code} (0x{value:02X})"
        with self._lock:
            key = self._pending.pop(mid, None)
            if key is None:
                # the PUBACK beat the registration of its message (see _publish), or it answers
                # the status message
                if len(self._early) > 256:
                    old = time.monotonic() - 60.0
                    self._early = {k: v for k, v in self._early.items() if v[0] > old}
                self._early[mid] = (time.monotonic(), error)
                return
        self._call(self._answered, key, error)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.receipt_topic:
            if msg.payload:  # retain set: the broker's stored copy, handed over at subscribe
                self._call(self._receipt, bytes(msg.payload), bool(msg.retain))
            return
        from paho.mqtt.client import topic_matches_sub

        for topic_filter, on_payload in self.session.subscriptions():
            if topic_matches_sub(topic_filter, msg.topic):
                self._call(on_payload, bytes(msg.payload))
                self._call(self.wakeup.set)  # the session may be ready now
                return
        for topic_filter, handler in self._subscriptions:
            if topic_matches_sub(topic_filter, msg.topic):
                props = getattr(msg, "properties", None)
                response = getattr(props, "ResponseTopic", None) if props else None
                correlation = getattr(props, "CorrelationData", None) if props else None
                self._call(handler, Incoming(msg.topic, bytes(msg.payload), bool(msg.retain),
                                             response, bytes(correlation) if correlation
                                             is not None else None))
                return

    def _receipt(self, payload: bytes, stored: bool = False) -> None:
        """A platform receipt (in the loop thread, where the outbox is written); `stored`: the
        broker's retained copy, of any age, which vouches only for what this target sent."""
        try:
            r = parse_receipt(payload, self.cfg.site.code, self.cfg.gateway.id)
        except ValueError as exc:
            self.bad_receipts += 1
            if self.bad_receipts in (1, 10) or self.bad_receipts % 100 == 0:
                log.warning("receipt on %s ignored: %s (%d bad so far)", self.receipt_topic, exc,
                            self.bad_receipts, extra={"event": "receipt_invalid",
                                                      "reason": str(exc), "target": self.name})
            return
        self.receipts_taken += 1
        confirmed = self.outbox.receipt(r.seq, r.event_ids, r.seq_event_id, target=self.name,
                                        stored=stored)
        log.debug("receipt of %s up to seq %s (+%d ids): %d events confirmed", self.name, r.seq,
                  len(r.event_ids), confirmed, extra={"event": "receipt", "seq": r.seq})
        self.wakeup.set()

    def _on_connect_fail(self, client, userdata) -> None:
        self._network = threading.current_thread()
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
            log.error("MQTT %s %s:%d: %s (attempt %d; retrying with backoff up to %g s)",
                      self.name, self.m.host, self.m.port, reason, self._failures,
                      self.m.reconnect_max, extra={"event": event, "reason": reason,
                                                   "attempt": self._failures,
                                                   "target": self.name})

    def _call(self, fn, *args) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    # -- lifecycle -----------------------------------------------------------------------------
    def _make_client(self):
        client = make_client(self.m, self.m.client_id, persistent=True,
                             will=self.session.will(), will_retain=self.session.will_retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        client.reconnect_delay_set(max(1, int(self.m.reconnect_min)), int(self.m.reconnect_max))
        # the window's messages, and the status messages beside them, never wait in paho's queue
        client.max_inflight_messages_set(self.m.max_inflight + 2)
        return client

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = self._make_client()
        _watch_threads()
        _WATCHED.append(self)
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
        self._connect_kwargs = kwargs
        self._client.connect_async(self.m.host, self.m.port, keepalive=self.m.keepalive, **kwargs)
        self._client.loop_start()

    def owns(self, thread: threading.Thread | None) -> bool:
        """Whether `thread` is this target's paho thread: the one that called it back, or, before
        a new one did, one of the name paho gives it (targets may share a client id)."""
        if self._network is not None:
            return thread is self._network
        return thread is not None and thread.name == f"paho-mqtt-client-{self.m.client_id}"

    def network_died(self, args: threading.ExceptHookArgs) -> None:
        """paho's thread ended on an error (in that thread, as it ends; paho has cleared its
        handle, so `loop_start` can start another)."""
        self.network_restarts += 1
        log.error("MQTT %s: the connection's thread ended on an error (%s: %s); connecting "
                  "again on a new one", self.name, args.exc_type.__name__, args.exc_value,
                  exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
                  extra={"event": "mqtt_loop_failed", "target": self.name,
                         "error": f"{args.exc_type.__name__}: {args.exc_value}",
                         "restarts": self.network_restarts})
        self._call(self._restart_network)

    def _restart_network(self) -> None:
        """A new connection on a new thread (loop thread). A fresh CONNECT, not the old socket:
        the error may have cut a connect's callback short, and only a new connect does all it
        does (subscriptions, births, the window's reconnect). The session is the broker's and
        paho's in-flight messages are sent again after it."""
        if self._stopping or self._client is None:
            return
        self._network = None
        self.connected.clear()
        self._client.connect_async(self.m.host, self.m.port, keepalive=self.m.keepalive,
                                   **self._connect_kwargs)
        self._client.loop_start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye as the session does ('offline' on the status topic), then disconnect (a
        clean disconnect fires no will)."""
        if self._client is None:
            return
        client = self._client
        if self.connected.is_set():
            info = self.session.on_stop(_publisher(client))
            deadline = time.monotonic() + timeout
            while info is not None and not info.is_published() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self._stopping = True
        with contextlib.suppress(ValueError):
            _WATCHED.remove(self)
        client.disconnect()
        client.loop_stop()

    def publish_now(self, topic_: str, doc: dict, qos: int = 0) -> bool:
        """Current-state messages (health) and refusals of requests that proved nothing: sent
        if connected, never queued (stale is useless, and junk must not fill the disk)."""
        if self._client is not None and self.connected.is_set() and self.session.ready():
            self._client.publish(self.session.topic(topic_), json.dumps(
                doc, ensure_ascii=False, separators=(",", ":")).encode(), qos=qos)
            return True
        return False

    def notify(self) -> None:
        """Something new is in the outbox."""
        self.wakeup.set()

    def pending(self) -> bool:
        """Events this target has not delivered (or, with receipts, its platform not confirmed)."""
        return bool(self.outbox.depth(self.name)["events"]
                    or self.outbox.unconfirmed(self.name)[0])

    async def run(self) -> None:
        """Drain the outbox forever, up to `max_inflight` messages in flight."""
        while True:
            await self.connected.wait()
            self.wakeup.clear()
            if not self.session.ready():  # nothing leaves; the outbox holds it meanwhile
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self.wakeup.wait()
                continue
            now = time.monotonic()
            rows = self.outbox.peek(self.window.peek_size(), self.name)
            for row in self.window.choose(rows, now):
                self._publish(row, now)
            for f in self.window.overdue(now, self.ack_timeout):
                log.warning("MQTT %s: no PUBACK for message %s (seq %s) after %g s; still "
                            "waiting (paho sends it again if the connection is renewed)",
                            self.name, f.row.event_id or f.row.id, f.row.seq, self.ack_timeout,
                            extra={"event": "puback_overdue", "seq": f.row.seq,
                                   "target": self.name})
            wait = self.window.retry_in(now)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # comes as the wake-up does, and a cancelled drain then runs on for ever (a stop
            # that never ends; seen once in the refusal test)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(1.0, wait or 1.0)):
                    await self.wakeup.wait()

    def _publish(self, row: OutboxRow, now: float) -> None:
        assert self._client is not None
        from paho.mqtt.client import MQTT_ERR_NO_CONN, MQTT_ERR_SUCCESS

        self.window.sent(row, now)
        started = time.monotonic()
        # paho calls on_publish while holding its own message lock, so ours is never held across
        # a paho call; a PUBACK that arrives before the message is registered waits in _early
        sent: Sent | None = self.session.send(row, _publisher(self._client))
        if sent is None:  # nothing for this target (Sparkplug: statistics)
            self._answered(row.key, None)
            return
        info = sent.info
        # NO_CONN: paho sends a QoS 1 message later; a QoS 0 one is released at the reconnect
        if info.rc not in (MQTT_ERR_SUCCESS, MQTT_ERR_NO_CONN):
            self._answered(row.key, f"publish refused by the client: {info.rc}")
            return
        if sent.qos == 0:
            self._qos0.add(row.key)
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None or early[0] < started:
                self._pending[info.mid] = row.key
                return
        self._answered(row.key, early[1])

    def _release_unwritten(self) -> None:
        """At a reconnect (loop thread): paho keeps QoS 1 messages to send again, but drops
        the QoS 0 ones it had not written (and never reports them). Their rows go back to the
        window unpunished, to be published again on the new connection, after its births."""
        keys = {k for k in self._qos0 if self.window.busy(k)}
        self._qos0.clear()
        if not keys:
            return
        with self._lock:
            self._pending = {mid: k for mid, k in self._pending.items() if k not in keys}
        for key in keys:
            self.window.release(key)

    def _answered(self, key, error: str | None) -> None:
        """A PUBACK or a refusal (loop thread): gathered, and handled at once after the others
        that came in together (one outbox transaction for them all)."""
        self._answers.append((key, error))
        if len(self._answers) == 1:
            assert self._loop is not None
            self._loop.call_soon(self._settle)

    def _settle(self) -> None:
        answers, self._answers = self._answers, []
        now = time.monotonic()
        delivered = []
        for key, error in answers:
            self._qos0.discard(key)
            row, ok = self.window.done(key, error, now)
            if row is None:
                continue
            if ok:
                delivered.append(row)
            elif error is None:
                log.info("message %s (seq %s) reached the broker behind a refused one; it is "
                         "sent again after it", row.event_id or row.id, row.seq,
                         extra={"event": "publish_behind_refused", "seq": row.seq,
                                "target": self.name})
            else:
                self.outbox.record_failure(row, error)
                if "rejected" in error:
                    self.rejected += 1
                log.warning("message %s (seq %s) not delivered to %s: %s; kept in the outbox, "
                            "retry in %.1f s", row.event_id or row.id, row.seq, self.name, error,
                            self.window.retry_in(now) or 0.0,
                            extra={"event": "publish_failed", "seq": row.seq, "error": error,
                                   "target": self.name})
        if delivered:
            self.outbox.ack_many(delivered, self.name)
            self.published += len(delivered)
        self.wakeup.set()

    def health(self, depth: dict | None = None) -> dict:
        """This target's connection and backlog (`depth`: the outbox's figures for it, as
        `Outbox.stats` gives them to the status thread; else read here)."""
        if depth is None:
            depth = self.outbox.depth(self.name)
            unconfirmed, oldest = self.outbox.unconfirmed(self.name)
        else:
            unconfirmed, oldest = depth.get("unconfirmed", 0), depth.get("oldest_unconfirmed")
        out = {"name": self.name, "broker": f"{self.m.host}:{self.m.port}",
               "connected": self.connected.is_set(), "events": depth.get("events", 0),
               "telemetry": depth.get("telemetry", 0), "in_flight": len(self.window.flights),
               "max_inflight": self.window.size, "published": self.published,
               "rejected": self.rejected}
        if self.network_restarts:
            out["network_restarts"] = self.network_restarts
        out.update(self.session.health())
        if self.m.receipts:
            out["unconfirmed"] = unconfirmed
            out["oldest_unconfirmed_s"] = round(time.time() - oldest, 1) if oldest else None
        return out


def _publisher(client):
    """A session's `publish(topic, payload, qos, retain[, properties])` on `client`."""
    return lambda t, p, q, r, props=None: client.publish(t, p, qos=q, retain=r,
                                                         properties=props)
