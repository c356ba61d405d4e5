"""The gateway's one MQTT client factory: a paho-mqtt 2.x client set up from `[uplink.mqtt]`
(callback API 2, MQTT 5 or 3.1.1, the client id, the username and the password read from its
file, TLS with the CA, the client certificate and a verified broker certificate, the will).
The uplink (`gateway/uplink/mqtt.py`) and `minewatch alerts test` both take their client from
here, so a test alert reaches the broker exactly as the daemon's alerts do.

`publish_once` sends one message and waits for its PUBACK (`minewatch alerts test`);
`request_once` sends a request and waits for its answer (`minewatch cmd`, the platform's side);
`diagnose` says why a connection failed, which paho does not: one plain attempt with the same
TLS settings.
"""

from __future__ import annotations

import ssl

from gateway.config.model import MqttUplink
from gateway.text_files import read_secret

__all__ = ["diagnose", "make_client", "publish_once", "request_once"]


def make_client(m: MqttUplink, client_id: str, *, persistent: bool = False,
                will: tuple[str, bytes] | None = None, will_retain: bool = True):
    """A paho client for the broker of `m`. `persistent`: the broker keeps the session across
    reconnects (MQTT 3.1.1: clean_session false; MQTT 5 asks for it at connect, with a session
    expiry). `will`: (topic, payload) the broker publishes at QoS 1, retained unless
    `will_retain` is false (a Sparkplug NDEATH), when the client vanishes."""
    from paho.mqtt.client import CallbackAPIVersion, Client
    from paho.mqtt.enums import MQTTProtocolVersion

    v5 = m.protocol == "5"
    client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
                    clean_session=None if v5 or not persistent else False)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=will_retain)
    if m.username:
        password = None
        if m.password_file:
            password = read_secret(m.password_file)  # checked when the config loaded
        client.username_pw_set(m.username, password)
    if m.tls_ca or m.tls_cert:
        client.tls_set(ca_certs=str(m.tls_ca) if m.tls_ca else None,
                       certfile=str(m.tls_cert) if m.tls_cert else None,
                       keyfile=str(m.tls_key) if m.tls_key else None,
                       cert_reqs=ssl.CERT_REQUIRED)
    return client


def diagnose(m: MqttUplink) -> str:
    """Why the broker of `m` cannot be reached: one plain connection, then the TLS handshake
    with the same files (paho's connect failure does not say)."""
    import socket

    try:
        with socket.create_connection((m.host, m.port), timeout=3) as sock:
            if not (m.tls_ca or m.tls_cert):
                return "connection failed"
            ctx = ssl.create_default_context(cafile=str(m.tls_ca) if m.tls_ca else None)
            if m.tls_cert:
                ctx.load_cert_chain(str(m.tls_cert), str(m.tls_key) if m.tls_key else None)
            with ctx.wrap_socket(sock, server_hostname=m.host):
                return "connection failed after a good TLS handshake"
    except ssl.SSLCertVerificationError as exc:
        return f"TLS: the broker's certificate is not trusted ({exc.verify_message})"
    except ssl.SSLError as exc:
        return f"TLS handshake failed: {exc.reason or exc}"
    except OSError as exc:
        return f"cannot reach the broker: {exc.strerror or exc}"


def publish_once(m: MqttUplink, client_id: str, topic: str, payload: bytes,
                 timeout: float = 10.0) -> dict:
    """Connect, publish `payload` at QoS 1, wait up to `timeout` s for its PUBACK, disconnect.
    What came back, as far as it got: `connect` (the CONNACK reason), `puback` and
    `reason_code` (the PUBACK's; 0x80 or above is a rejection). OSError when the broker cannot
    be reached (refused, no route, a TLS handshake that fails)."""
    import threading

    client = make_client(m, client_id)
    result: dict = {}
    done = threading.Event()

    def on_connect(c, u, flags, rc, props) -> None:
        result["connect"] = str(rc)
        if rc.is_failure:
            done.set()
            return
        c.publish(topic, payload, qos=1)

    def on_publish(c, u, mid, rc, props) -> None:
        result["puback"] = str(rc)
        result["reason_code"] = getattr(rc, "value", 0)
        done.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    client.connect(m.host, m.port, keepalive=10)
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return result


def request_once(m: MqttUplink, client_id: str, topic: str, payload: bytes, answer_topic: str,
                 is_answer, correlation: bytes | None = None, timeout: float = 30.0) -> dict:
    """Subscribe to `answer_topic`, publish `payload` on `topic` at QoS 1 (under MQTT 5 with
    `answer_topic` as its Response Topic and `correlation` as its Correlation Data), and wait up
    to `timeout` s for a message there that `is_answer(doc)` accepts. What came back: `connect`
    (the CONNACK reason), `puback`, and `answer` (the JSON document) when one came. OSError when
    the broker cannot be reached."""
    import json
    import threading

    client = make_client(m, client_id)
    result: dict = {}
    done = threading.Event()

    def on_connect(c, u, flags, rc, props) -> None:
        result["connect"] = str(rc)
        if rc.is_failure:
            done.set()
            return
        c.subscribe(answer_topic, qos=1)

    def on_subscribe(c, u, mid, rcs, props) -> None:
        properties = None
        if m.protocol == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.PUBLISH)
            properties.ResponseTopic = answer_topic
            if correlation is not None:
                properties.CorrelationData = correlation
        c.publish(topic, payload, qos=1, properties=properties)

    def on_publish(c, u, mid, rc, props) -> None:
        result["puback"] = str(rc)

    def on_message(c, u, msg) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if is_answer(doc):
            result["answer"] = doc
            done.set()

    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_publish, client.on_message = on_publish, on_message
    client.connect(m.host, m.port, keepalive=max(10, int(timeout)))
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return result
