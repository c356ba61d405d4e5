"""The platform's side of commands for integration tests: a simulated site (firmware-sim serve),
its gateway (minewatch run) with `[commands]` on, a real Mosquitto, the recorder of everything
the gateway publishes, `minewatch cmd` as a subprocess, and a raw MQTT 5 client for requests the
CLI would never send (unsigned, replayed, duplicated, with a Response Topic)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from firmware_sim.scenario import load_scenario
from tests.support.services import MqttRecorder, free_port, poll_until, python_cli, wait_for_line
from tests.support.sites import ROOT, example_site

SECRET = "9c1f4e7a2b8d0c3f6a5e1b9d7c2f4a8e0b6d3c1f5a7e9b2d"


class RawClient:
    """An MQTT 5 client that publishes requests as they are given and keeps what arrives on
    the topics it subscribed to, with the MQTT 5 properties."""

    def __init__(self, port: int, topics: list[str]):
        from paho.mqtt.client import CallbackAPIVersion, Client
        from paho.mqtt.enums import MQTTProtocolVersion

        self.got: list[tuple[str, dict, bytes | None]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{port}-{os.getpid()}",
                             protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(10):
            raise TimeoutError("the raw client could not subscribe")

    def _on_message(self, client, userdata, msg) -> None:
        props = getattr(msg, "properties", None)
        corr = getattr(props, "CorrelationData", None) if props else None
        with self.lock:
            self.got.append((msg.topic, json.loads(msg.payload), corr))

    def publish(self, topic: str, payload: bytes, response_topic: str | None = None,
                correlation: bytes | None = None, retain: bool = False) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = None
        if response_topic or correlation:
            props = Properties(PacketTypes.PUBLISH)
            if response_topic:
                props.ResponseTopic = response_topic
            if correlation:
                props.CorrelationData = correlation
        self.client.publish(topic, payload, qos=1, retain=retain,
                            properties=props).wait_for_publish(10)

    def messages(self, topic_suffix: str) -> list[tuple[str, dict, bytes | None]]:
        with self.lock:
            return [m for m in self.got if m[0].endswith(topic_suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class CommandSite:
    """The example tailings pond with `[commands]`, live on one simulated clock."""

    def __init__(self, tmp: Path, mqtt_port: int, *, scale: float, commands: str = "",
                 replace: dict[str, str] | None = None, key: bool = False):
        self.tmp = tmp
        self.scenario = load_scenario("rainstorm")
        self.sim_port = free_port()
        self.cfg = example_site(tmp, modbus_port=self.sim_port, mqtt_port=mqtt_port,
                                replace=replace)
        table = "\n[commands]\nenabled = true\n" + commands
        if key:
            (tmp / "command.key").write_text(SECRET + "\n", encoding="utf-8")
            table += 'key_file = "command.key"\n'
        self.cfg.write_text(self.cfg.read_text(encoding="utf-8") + table, encoding="utf-8")
        self.base = "minewatch/v1/130825-TP001/gw01"
        self.recorder = MqttRecorder(mqtt_port, "minewatch/v1/+/+/+")
        self.raw = RawClient(mqtt_port, [f"{self.base}/cmd_result", "platform/replies/#"])
        self.anchor = time.time()
        clock = ["--epoch", str(self.scenario.epoch), "--time-scale", str(scale), "--anchor",
                 str(self.anchor)]
        self.log = tmp / "gateway.log"
        self.sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm",
                              "--site-config", str(self.cfg), "--listen",
                              f"127.0.0.1:{self.sim_port}", *clock, log=tmp / "sim.log")
        self.gw = python_cli("gateway.cli", "run", "--config", str(self.cfg), *clock,
                             log=self.log)
        wait_for_line(self.log, '"first_values"', timeout=60)

    def cmd(self, *args: str, timeout: float = 30.0) -> tuple[int, dict | None, str]:
        """`minewatch cmd ARGS --config site --json`: exit code, the result, stderr."""
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "cmd", *args, "--config",
                              str(self.cfg), "--json", "--timeout", str(timeout)], cwd=ROOT,
                             capture_output=True, text=True, timeout=timeout + 30)
        return out.returncode, json.loads(out.stdout) if out.stdout.strip() else None, out.stderr

    def request(self, name: str, args: dict, *, sign: bool = True, req_id: str | None = None,
                ts_ms: int | None = None) -> tuple[str, dict]:
        """(topic, request) as the platform builds it, signed with the site's key if asked."""
        from gateway.commands.keys import CommandKey
        from gateway.commands.remote import build_request
        from gateway.config import load_site

        key = CommandKey("hmac-sha256", SECRET.encode()) if sign else None
        return build_request(load_site(self.cfg), name, args, key, req_id or str(uuid.uuid4()),
                             ts_ms)

    def results(self, req_id: str | None) -> list[dict]:
        return [doc for _, doc, _ in self.raw.messages("/cmd_result") if doc["id"] == req_id]

    def wait(self, what, timeout: float = 30.0, why: str = ""):
        try:
            return poll_until(what, timeout, why)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log.read_text()[-3000:]}") from None

    def alert_log(self) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "alerts", "list", "--config",
                              str(self.cfg), "--json"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def close(self) -> None:
        if self.gw.poll() is None:
            self.gw.terminate()
            try:
                self.gw.wait(20)
            except subprocess.TimeoutExpired:
                self.gw.kill()
        self.sim.terminate()
        self.sim.wait(5)
        self.raw.close()
        self.recorder.close()
