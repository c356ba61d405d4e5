"""A Sparkplug B host application for tests: subscribes to the Sparkplug namespace (and any side
topics), reads every payload with the test's own wire decoder (`sparkplug_wire.py`), keeps what
arrived in order, sends an NCMD rebirth request and publishes its STATE as a Primary Host
Application does (Sparkplug 3.0.0: retained JSON on `spBv1.0/STATE/<host_id>`)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable

from tests.support.sparkplug_wire import decode_payload, encode_ncmd

__all__ = ["SparkplugHost"]


class SparkplugHost:
    def __init__(self, port: int, *side_topics: str):
        from paho.mqtt.client import CallbackAPIVersion, Client
        from paho.mqtt.enums import MQTTProtocolVersion

        self.messages: list[tuple[str, dict]] = []  # (topic, decoded) in arrival order
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        subscribed = threading.Event()
        filters = [("spBv1.0/#", 1), *((t, 1) for t in side_topics)]
        self.client = Client(CallbackAPIVersion.VERSION2,
                             client_id=f"sparkplug-host-{port}-{os.getpid()}",
                             protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(filters)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError("the Sparkplug host could not subscribe")

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.startswith("spBv1.0/STATE/"):
            doc = json.loads(msg.payload)
        elif msg.topic.startswith("spBv1.0/"):
            doc = decode_payload(msg.payload)
        else:
            doc = json.loads(msg.payload)
        with self.changed:
            self.messages.append((msg.topic, doc))
            self.changed.notify_all()

    def wait(self, done: Callable[[list[tuple[str, dict]]], bool], timeout: float = 90.0
             ) -> bool:
        """Wait until `done(messages)` holds (True), or give up after `timeout` s (False)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not done(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
            return True

    def snapshot(self) -> list[tuple[str, dict]]:
        with self.lock:
            return list(self.messages)

    def rebirth(self, group: str, edge: str) -> None:
        """NCMD `Node Control/Rebirth` = true to the edge node."""
        self.client.publish(f"spBv1.0/{group}/NCMD/{edge}",
                            encode_ncmd(int(time.time() * 1000)), qos=0)

    def state(self, host_id: str, online: bool, timestamp: int) -> None:
        """This host's STATE: retained, QoS 1, `{"online": ..., "timestamp": ...}`."""
        info = self.client.publish(f"spBv1.0/STATE/{host_id}", json.dumps(
            {"online": online, "timestamp": timestamp}), qos=1, retain=True)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
