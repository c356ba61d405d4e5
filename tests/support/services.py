"""Real services for tests: a Mosquitto broker, subprocesses of our own CLIs, an MQTT recorder."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


_HANDED_OUT: set[int] = set()


def _port_range() -> tuple[int, int]:
    """This pytest-xdist worker's share of 20000-32767. A port free now may be one another
    worker's test handed out and freed for a while (its broker stopped for an outage): that
    test's gateway, reconnecting, would then publish into this worker's broker. Each worker
    draws from its own share, so within a run no two tests ever meet on a port."""
    lo, hi = 20000, 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or not worker[2:].isdigit() or count < 2:
        return lo, hi
    span = (hi - lo) // count
    k = int(worker[2:]) % count
    return lo + k * span, lo + (k + 1) * span


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (32768 up): a port the kernel
    chose for us comes from that range, so a client's outgoing connection (paho, a Modbus poll)
    can take it before the server that was meant for it binds. Never the same twice per run,
    and from this worker's own share of the range (`_port_range`)."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    lo, hi = _port_range()
    for _ in range(1000):
        port = rng.randrange(lo, hi)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free loopback port between {lo} and {hi - 1}")


def require_binary(name: str, *fallbacks: str) -> str:
    """Path of a real part; missing fails under CI=true and skips elsewhere (with the reason)."""
    found = shutil.which(name) or next((f for f in fallbacks if Path(f).is_file()), None)
    if found:
        return found
    message = f"{name} is not installed (apt-get install {name}); it is a real part of this test"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_file(path: str, package: str) -> str:
    """A file a Debian package installs (a font); missing fails under CI=true, skips elsewhere."""
    if Path(path).is_file():
        return path
    message = f"{path} is missing (apt-get install {package}); it is a real part of this test"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def poll_until(what, timeout: float = 30.0, why: str = "", interval: float = 0.1):
    """What `what()` returns once it is truthy; TimeoutError naming `why` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(interval)
    raise TimeoutError(f"{why or what} not seen within {timeout} s")


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Mosquitto:
    def __init__(self, binary: str, workdir: Path, port: int, extra_conf: str = "",
                 persistent: bool = False, anonymous: bool = True):
        self.persistent = persistent
        self.anonymous = anonymous
        self.binary = binary
        self.dir = workdir
        self.port = port
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "mosquitto.log"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        # per-listener security (a TLS listener beside the plain one) must come before the rest
        head = "per_listener_settings true\n" if "per_listener_settings" in self.extra_conf else ""
        conf.write_text(
            head + f"listener {self.port} 127.0.0.1\n"
            # as root mosquitto drops to user 'mosquitto', who cannot read pytest's private
            # temporary folders (ACL file, log, persistence)
            + ("user root\n" if os.geteuid() == 0 else "")
            + f"allow_anonymous {'true' if self.anonymous else 'false'}\n"
            + ("persistence true\n" f"persistence_location {self.dir}/\n" if self.persistent
               else "persistence false\n")
            + f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            + self.extra_conf.replace("per_listener_settings true\n", "")
        )
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        wait_port(self.port)

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its ACL and password files."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class VictoriaMetrics:
    """A real VictoriaMetrics server on loopback: it takes the InfluxDB v2 write API that
    influxdb-client speaks. Deduplication at 1 ms keeps one sample per (series, timestamp), as a
    production setup for idempotent re-sends would. Stop and start keep the same data folder."""

    def __init__(self, binary: str, workdir: Path, port: int):
        self.binary = binary
        self.dir = workdir
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "victoria-metrics.log"
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
                 f"-storageDataPath={self.dir / 'data'}", "-dedup.minScrapeInterval=1ms",
                 "-retentionPeriod=100y", "-search.disableCache", "-loggerLevel=WARN"],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"VictoriaMetrics did not start; see {self.log}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def export(self, match: str = '{__name__=~".+"}') -> list[dict]:
        """Every series matching `match` with all its raw samples (the /api/v1/export API);
        flushes recent writes first so they are searchable."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10):
            pass
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]


class MqttRecorder:
    """Subscribes like the city platform and keeps every message (topic, payload, retain).

    Like the platform, it answers each alert or fault event with a receipt on the gateway's
    `receipt` topic (retained, `config/schema/receipt.schema.json`): the highest seq up to which
    it holds every event. `known` seeds what a platform that reconnects already holds."""

    def __init__(self, port: int, topic: str = "#", receipts: bool = True,
                 known: list[dict] | None = None, protocol: str = "5"):
        from paho.mqtt.client import CallbackAPIVersion, Client
        from paho.mqtt.enums import MQTTProtocolVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.messages: list[tuple[str, dict, bool]] = []
        # what the broker sent again on its own leg (DUP set) after this subscriber already had
        # it: a QoS 1 delivery whose PUBACK the broker had not taken when it stopped. A platform
        # drops those as the same packet; kept apart here, so `messages` counts what the
        # gateway sent (a gateway's re-send reaches a subscriber without DUP: the broker does
        # not pass the flag on)
        self.redelivered: list[tuple[str, bytes]] = []
        self._seen: set[tuple[str, bytes]] = set()
        self.lock = threading.Lock()
        self.receipts = receipts
        self.held: dict[str, dict[int, str]] = {}  # gateway topic base -> seq -> event_id
        for ev in known or []:
            self.held.setdefault(f"minewatch/v1/{ev['site']}/{ev['gateway']}", {})[
                ev["seq"]] = ev["event_id"]
        self.subscribed = threading.Event()
        v5 = protocol == "5"
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=f"platform-{port}-{os.getpid()}",
                             protocol=MQTTProtocolVersion.MQTTv5 if v5 else
                             MQTTProtocolVersion.MQTTv311, clean_session=None if v5 else False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.telemetry_wire: list[bytes] = []
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        # a persistent session, like the platform's: with a persistent broker, QoS 1 messages
        # published while this subscriber reconnects are queued for it, not lost (MQTT 3.1.1:
        # clean_session false)
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("the recorder could not subscribe")

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            if msg.dup and (msg.topic, msg.payload) in self._seen:
                self.redelivered.append((msg.topic, msg.payload))
                return
            self._seen.add((msg.topic, msg.payload))
        if msg.topic.endswith("/telemetry"):
            # any wire encoding, read as the platform reads it (gateway/encodings/decode.py)
            from gateway.encodings.decode import decode

            doc = decode(msg.payload)
            with self.lock:
                self.telemetry_wire.append(msg.payload)  # as it came, before decoding
        else:
            doc = json.loads(msg.payload)
        with self.lock:
            self.messages.append((msg.topic, doc, bool(msg.retain)))
        base, _, kind = msg.topic.rpartition("/")
        if self.receipts and kind in ("alert", "fault"):
            with self.lock:
                seqs = self.held.setdefault(base, {})
                seqs[doc["seq"]] = doc["event_id"]
                top = 0
                while top + 1 in seqs:
                    top += 1
            receipt = {"schema": "minewatch/receipt/1", "site": doc["site"],
                       "gateway": doc["gateway"], "seq": top,
                       "ts": int(time.time() * 1000)}
            if top:
                receipt["seq_event_id"] = seqs[top]
            client.publish(f"{base}/receipt", json.dumps(receipt), qos=1, retain=True)

    def on(self, suffix: str) -> list[dict]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith("/" + suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def python_cli(module: str, *args: str, log: Path | None = None) -> subprocess.Popen:
    """Start one of our CLIs as a real subprocess (as a site would run it)."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_line(path: Path, needle: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                if needle in line:
                    return line
        time.sleep(0.05)
    raise TimeoutError(f"{needle!r} not seen in {path} within {timeout} s:\n"
                       + (path.read_text()[-3000:] if path.exists() else "(no output)"))


def play_scenario(tmp: Path, scenario, cfg: Path, sim_port: int, recorder: MqttRecorder,
                  scale: float, timeout: float = 240.0) -> None:
    """The whole scenario live: `firmware-sim serve` and `minewatch run` as processes on one
    simulated clock, until the scenario's end; the recorder is closed afterwards."""
    anchor = time.time() + 4.0  # both processes start before simulated time leaves the epoch
    clock = ["--epoch", str(scenario.epoch), "--time-scale", str(scale), "--anchor", str(anchor)]
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", scenario.name, "--site-config",
                     str(cfg), "--listen", f"127.0.0.1:{sim_port}", *clock, log=tmp / "sim.log")
    gw = None
    try:
        wait_for_line(tmp / "sim.log", '"listening"')
        gw = python_cli("gateway.cli", "run", "--config", str(cfg), *clock, "--until",
                        str(scenario.epoch + scenario.duration), log=tmp / "gateway.log")
        assert gw.wait(timeout=timeout) == 0, (tmp / "gateway.log").read_text()[-4000:]
        time.sleep(0.5)
    finally:
        if gw and gw.poll() is None:
            gw.kill()
        sim.terminate()
        sim.wait(5)
        recorder.close()
