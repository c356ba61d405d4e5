"""`firmware-sim demo` (what `make demo` runs): a whole site on one machine in about two minutes.

It starts a broker (Mosquitto when installed, otherwise the embedded amqtt broker), the simulated
sensors of the example tailings pond playing the rainstorm scenario, the gateway (`minewatch run`,
as a separate process, exactly as on site) and a subscriber that prints every alert as the city
platform receives it. Three simulated days pass in about 90 seconds; it ends with a summary.
The simulator never imports the gateway: it starts its command line, like an operator would.

The platform also talks back (docs/commands.md): the demo's site takes signed commands, the
orange alert is reminded while nobody acknowledges it, and the platform's duty officer
acknowledges the red one with an `ack` request signed with HMAC-SHA256, in a few lines.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["run_demo", "site_for_ports"]

ROOT = Path(__file__).resolve().parent.parent
LEVEL_ZH = {"none": "解除", "blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
STATE_ZH = {"acknowledged": "已确认", "reminder": "未确认提醒"}
DUTY_OFFICER = "值班员 duty officer"
# the demo site takes signed commands and reminds an unacknowledged orange or red alert
COMMANDS = """
[commands]
enabled = true
key_file = "command.key"
ack_reminder = "30min"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_for_ports(example: Path, out_dir: Path, *, modbus_port: int, mqtt_port: int,
                   replace: dict[str, str] | None = None, listen: str = "off") -> Path:
    """A copy of an example site config with the given ports and a private state folder
    (`listen`: the gateway's /metrics and /status endpoint, HOST:PORT or "off")."""
    text = example.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = 5020$", f"port = {modbus_port}", text)
    text = re.sub(r"(?m)^port = 1883$", f"port = {mqtt_port}", text)
    text = re.sub(r"(?m)^listen = .*\n", "", text)
    text = re.sub(r"(?m)^state_dir = .*$",
                  f'state_dir = "{out_dir / "state"}"\nlisten = "{listen}"', text)
    for old, new in (replace or {}).items():
        if old not in text:
            raise ValueError(f"{old!r} is not in {example}")
        text = text.replace(old, new)
    path = out_dir / example.name
    path.write_text(text, encoding="utf-8")
    return path


def _wait_port(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


class _Broker:
    def __init__(self, workdir: Path, port: int):
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None
        self.kind = ""
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                               if Path("/usr/sbin/mosquitto").exists() else None)
        if binary:
            conf = workdir / "mosquitto.conf"
            conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
            self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.kind = "mosquitto"
        else:
            self.thread = threading.Thread(target=self._amqtt, daemon=True)
            self.thread.start()
            self.kind = "amqtt (embedded; install mosquitto for the real thing)"
        if not _wait_port(port):
            raise RuntimeError(f"the {self.kind} broker did not start on port {port}")

    def _amqtt(self) -> None:
        import asyncio

        from amqtt.broker import Broker

        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                              {"allow_anonymous": True}}}

        async def main() -> None:
            broker = Broker(config)
            await broker.start()
            while True:
                await asyncio.sleep(3600)

        asyncio.run(main())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)


def _sign(topic: str, request: dict, secret: bytes) -> str:
    """The request's HMAC-SHA256 over its topic and canonical JSON (docs/commands.md#security):
    for strings and integers, sorted keys without spaces are RFC 8785's canonical form."""
    body = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(secret, f"{topic}\n{body}".encode(), hashlib.sha256).hexdigest()


def _platform(port: int, prefix: str, received: list[dict], status: list[dict],
              secret: bytes):
    from paho.mqtt.client import CallbackAPIVersion, Client

    held: dict[int, str] = {}
    seen: set[str] = set()
    asked: list[str] = []

    def acknowledge(client, doc: dict) -> None:
        """The duty officer acknowledges the first red alert: a signed `ack` request."""
        base = f"{prefix}/{doc['site']}/{doc['gateway']}"
        request = {"id": f"ack-{doc['event_id']}", "ts": int(time.time() * 1000),
                   "alert_id": doc["alert_id"], "by": DUTY_OFFICER, "note": "dam patrol sent"}
        request["sig"] = _sign(f"{base}/cmd/ack", request, secret)
        asked.append(doc["alert_id"])
        print(f"[platform] acknowledging the red alert of {doc['point']} as {DUTY_OFFICER}",
              flush=True)
        client.publish(f"{base}/cmd/ack", json.dumps(request, ensure_ascii=False), qos=1)

    def on_message(client, userdata, msg) -> None:
        doc = json.loads(msg.payload)
        if msg.topic.endswith("/cmd_result"):
            outcome = f"event seq={doc['result']['seq']}" if doc["ok"] else doc["error"]["message"]
            print(f"[platform] gateway answered {doc['command']} {doc['id'][:12]}…: "
                  f"{'ok' if doc['ok'] else 'REFUSED'}, {outcome}", flush=True)
            return
        if msg.topic.endswith("/status"):
            status.append(doc)
            print(f"[platform] status: gateway {doc['gateway']} is {doc['state']}", flush=True)
            return
        # the platform's receipt: every event up to this seq is stored here (end-to-end
        # delivery, config/schema/receipt.schema.json); the gateway resends what it does not cover
        held[doc["seq"]] = doc["event_id"]
        top = 0
        while top + 1 in held:
            top += 1
        if top:
            client.publish(msg.topic.rpartition("/")[0] + "/receipt", json.dumps(
                {"schema": "minewatch/receipt/1", "site": doc["site"], "gateway": doc["gateway"],
                 "seq": top, "seq_event_id": held[top], "ts": int(time.time() * 1000)}),
                qos=1, retain=True)
        if doc["event_id"] in seen:
            return  # a resend: the platform dedupes on event_id
        seen.add(doc["event_id"])
        received.append(doc)
        if doc["kind"] == "fault":
            print(f"[platform] {doc['observed_at_local']}  FAULT {doc['state']:10s} "
                  f"{doc['point']}: {doc['message']['en']}", flush=True)
            return
        colour = STATE_ZH.get(doc["state"]) or (LEVEL_ZH[doc["level"]]
                                                if doc["state"] != "cleared" else "解除")
        roman = f"({doc['grade_roman']})" if doc["grade_roman"] else "    "
        print(f"[platform] {doc['observed_at_local']}  seq={doc['seq']:<3d} {doc['state']:10s} "
              f"{doc['level']:6s} {roman:5s} {colour}  {doc['message']['zh']}\n"
              f"{'':31s}{doc['message']['en']}", flush=True)
        if doc["level"] == "red" and doc["state"] in ("raised", "escalated") and not asked:
            acknowledge(client, doc)

    client = Client(CallbackAPIVersion.VERSION2, client_id=f"platform-demo-{os.getpid()}")
    # what the platform's alarm desk watches: alerts, faults and the gateway's status
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(
        [(f"{prefix}/+/+/{kind}", 1) for kind in ("alert", "fault", "status", "cmd_result")])
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def run_demo(scenario: str = "rainstorm", time_scale: float = 3000.0) -> int:
    from firmware_sim.scenario import load_scenario

    sc = load_scenario(scenario)
    work = Path(tempfile.mkdtemp(prefix="minewatch-demo-"))
    modbus_port, mqtt_port = free_port(), free_port()
    http_port = free_port()
    cfg = site_for_ports(sc.site_config, work, modbus_port=modbus_port, mqtt_port=mqtt_port,
                         listen=f"127.0.0.1:{http_port}")
    secret = secrets.token_hex(32)  # the command key the platform and the gateway share
    (work / "command.key").write_text(secret + "\n", encoding="utf-8")
    (work / "command.key").chmod(0o600)
    cfg.write_text(cfg.read_text(encoding="utf-8") + COMMANDS, encoding="utf-8")
    print(f"MineWatch demo: scenario '{sc.name}' ({sc.description}), {sc.duration / 3600:.0f} h "
          f"of simulated time at x{time_scale:g}; files in {work}", flush=True)
    broker = _Broker(work, mqtt_port)
    print(f"broker: {broker.kind} on 127.0.0.1:{mqtt_port}", flush=True)
    received: list[dict] = []
    status: list[dict] = []
    platform = _platform(mqtt_port, "minewatch/v1", received, status, secret.encode())
    anchor = time.time() + 3.0
    clock = ["--epoch", str(sc.epoch), "--time-scale", str(time_scale), "--anchor", str(anchor)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sim = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "serve", "--scenario",
                            scenario, "--site-config", str(cfg), "--listen",
                            f"127.0.0.1:{modbus_port}", *clock],
                           stdout=open(work / "firmware-sim.log", "w"),  # noqa: SIM115
                           stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    gw = None
    try:
        if not _wait_port(modbus_port):
            print("the simulator did not start; see", work / "firmware-sim.log", file=sys.stderr)
            return 1
        print(f"simulator: Modbus TCP on 127.0.0.1:{modbus_port}; starting the gateway "
              f"(log: {work / 'gateway.log'}; metrics http://127.0.0.1:{http_port}/metrics, "
              f"minewatch status --config {cfg})", flush=True)
        gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg),
                               *clock, "--until", str(sc.epoch + sc.duration)],
                              stdout=open(work / "gateway.log", "w"),  # noqa: SIM115
                              stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        rc = gw.wait(timeout=sc.duration / time_scale + 120)
        time.sleep(0.5)
    finally:
        if gw is not None and gw.poll() is None:
            gw.kill()
        sim.terminate()
        sim.wait(5)
        platform.loop_stop()
        platform.disconnect()
        broker.stop()
    changes = [e for e in received if e["state"] not in ("acknowledged", "reminder")]
    alerts = [e for e in changes if e["kind"] == "safety"]
    acks = [e for e in received if e["state"] == "acknowledged"]
    reminders = [e for e in received if e["state"] == "reminder"]
    late = [r for r in reminders for a in acks if r["alert_id"] == a["alert_id"]
            and r["seq"] > a["seq"] and r["level"] == a["level"]]
    seqs = sorted(e["seq"] for e in received)
    gap_free = seqs == list(range(1, len(seqs) + 1))
    print("\n== summary ==")
    print(f"gateway exit code: {rc}")
    print(f"events received by the platform: {len(changes)} "
          f"({len(alerts)} safety, {len(changes) - len(alerts)} fault)")
    for a in acks:
        print(f"acknowledged from the platform: the {a['level']} alert of {a['point']} by "
              f"{a['ack']['by']} (seq {a['seq']}); reminders before it: "
              f"{sum(r['seq'] < a['seq'] for r in reminders)}, after it at that level: "
              f"{len(late)}")
    print("sequence: " + " -> ".join(f"{e['state']}:{e['level']}" for e in alerts))
    print(f"alert episodes: {len({e['alert_id'] for e in alerts})}; seq 1..{len(seqs)} "
          f"{'without gaps' if gap_free else 'WITH GAPS: ' + str(seqs)}")
    print(f"last status: {status[-1]['state'] if status else 'none'}")
    print(f"alert log: minewatch alerts list --config {cfg}")
    return 0 if rc == 0 and gap_free and alerts and len(acks) == 1 and not late else 1


def main() -> int:
    return run_demo()
