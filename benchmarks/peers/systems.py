"""Each system under test: how it is started against the generated site, with a config generated
for that site, and how its MQTT messages are counted. One class per system; all share `Site`."""

from __future__ import annotations

import abc
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.numba_cache import configure as numba_cache_dir

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = ROOT / ".cache" / "peers"


@dataclass(frozen=True)
class Site:
    """The generated site (benchmarks.startup.generated_site): `devices` analog-input modules of
    `points` input registers 0..points-1 (int16), 20 unit ids per bus, one TCP port per bus."""

    toml: Path
    devices: int
    points: int
    first_port: int
    per_bus: int = 20

    def port(self, device: int) -> int:
        return self.first_port + device // self.per_bus

    def unit(self, device: int) -> int:
        return device % self.per_bus + 1


class System(abc.ABC):
    """One system under test: how to start it on a site, and how to read what it publishes."""

    name = ""
    mqtt_timestamp = ""  # which field gives the sample time, or why there is none
    notes = ""

    @abc.abstractmethod
    def command(self, site: Site, work: Path, broker: int) -> tuple[list[str], dict, Path]:
        """(argv, extra environment, log path) that run this system against `site`."""

    @abc.abstractmethod
    def parse(self, topic: str, payload: bytes) -> tuple[int, list[float]]:
        """(values in this message, their sample times) of one MQTT message it published."""

    def missing(self) -> str | None:
        """The exact reason this system cannot run here, or None."""
        return None

    def broker_conf(self, work: Path) -> str:
        """Extra Mosquitto configuration this system needs."""
        return ""

    def answer(self, topic: str, payload: bytes) -> list[tuple[str, bytes]]:
        """Replies the platform would publish to this message (none for most systems)."""
        return []


class MineWatch(System):
    name = "MineWatch"
    mqtt_timestamp = "observed_at (read time) of each telemetry point"
    notes = "detectors, alert engine and MQTT uplink on; planned reads"

    def command(self, site, work, broker):
        text = site.toml.read_text() + (
            f'\n[uplink.mqtt]\nhost = "127.0.0.1"\nport = {broker}\nprefix = "minewatch/v1"\n')
        cfg = work / "minewatch.toml"
        cfg.write_text(text)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache_dir()),
               "PYTHONUNBUFFERED": "1"}
        from benchmarks.startup import GATEWAY

        return [*GATEWAY, "run", "--config", str(cfg)], env, ROOT

    def parse(self, topic, payload):
        if not topic.endswith("/telemetry"):
            return 0, []
        from gateway.encodings.decode import decode

        doc = decode(payload)
        if doc.get("kind") != "values":
            return 0, []
        pts = doc["points"]
        return len(pts), [p["observed_at"] / 1000 for p in pts if p.get("observed_at")]


class Floor(System):
    name = "hand-written poller (the floor)"
    mqtt_timestamp = "ts of each message (taken before the request)"
    notes = "asyncio + struct + paho, one FC4 read per device poll, every value a QoS 0 message"
    per = "value"

    def command(self, site, work, broker):
        return [sys.executable, "-m", "benchmarks.peers.floor", "--first-port",
                str(site.first_port), "--devices", str(site.devices), "--points",
                str(site.points), "--per-bus", str(site.per_bus), "--broker", str(broker),
                "--per", self.per], {**os.environ, "PYTHONUNBUFFERED": "1"}, ROOT

    def parse(self, topic, payload):
        if not topic.startswith("floor/"):
            return 0, []
        doc = json.loads(payload)
        n = len(doc["values"]) if "values" in doc else 1
        return n, [doc["ts"] / 1000] * n


class FloorBatched(Floor):
    name = "hand-written poller, one message per device"
    notes = "asyncio + struct + paho, one FC4 read and one QoS 1 JSON message per device poll"
    per = "device"


class Collectd(System):
    name = "collectd modbus"
    mqtt_timestamp = "the time in each 'time:value' payload (collectd's read time)"
    notes = "modbus plugin (libmodbus) -> mqtt plugin; one Data block per point"

    def missing(self):
        if not shutil.which("collectd") or not Path("/usr/lib/collectd/modbus.so").is_file():
            return "collectd or /usr/lib/collectd/modbus.so not installed " \
                   "(bash benchmarks/peers/setup.sh collectd)"
        return None

    def command(self, site, work, broker):
        # collectd's modbus plugin reads each <Data> block with its own request: it has no
        # coalescing, so a point is a Data block, as its users configure it.
        lines = [f'Interval 1\nFQDNLookup false\nHostname "bench"\nReadThreads 8\n'
                 f'WriteThreads 2\nBaseDir "{work}"\nPIDFile "{work}/collectd.pid"\n'
                 'TypesDB "/usr/share/collectd/types.db"\n'
                 'LoadPlugin logfile\n<Plugin logfile>\n  LogLevel "warning"\n'
                 f'  File "{work}/collectd.log"\n</Plugin>\n'
                 'LoadPlugin modbus\nLoadPlugin mqtt\n<Plugin modbus>']
        for p in range(site.points):
            lines.append(f'  <Data "ai{p + 1}">\n    RegisterBase {p}\n    RegisterCmd ReadInput\n'
                         f'    RegisterType Int16\n    Type "gauge"\n    Instance "ai{p + 1}"\n'
                         '  </Data>')
        for bus in range((site.devices + site.per_bus - 1) // site.per_bus):
            lines.append(f'  <Host "bus{bus}">\n    Address "127.0.0.1"\n'
                         f'    Port "{site.first_port + bus}"\n    Interval 1')
            for d in range(bus * site.per_bus, min(site.devices, (bus + 1) * site.per_bus)):
                collect = "\n".join(f'      Collect "ai{p + 1}"' for p in range(site.points))
                lines.append(f'    <Slave {site.unit(d)}>\n      Instance "ai{d:03d}"\n'
                             f'{collect}\n    </Slave>')
            lines.append('  </Host>')
        lines.append('</Plugin>\n<Plugin mqtt>\n  <Publish "bench">\n    Host "127.0.0.1"\n'
                     f'    Port {broker}\n    ClientId "collectd-bench"\n    Prefix "collectd"\n'
                     '    QoS 0\n  </Publish>\n</Plugin>\n')
        conf = work / "collectd.conf"
        conf.write_text("\n".join(lines))
        return [shutil.which("collectd") or "collectd", "-f", "-C", str(conf)], dict(os.environ), \
            work

    def parse(self, topic, payload):
        if not topic.startswith("collectd/"):
            return 0, []
        stamp, _, _ = payload.decode().partition(":")
        return 1, [float(stamp)]


class ThingsBoard(System):
    name = "ThingsBoard IoT Gateway"
    mqtt_timestamp = "ts of each v1/gateway/telemetry entry (stamped at conversion)"
    notes = "modbus connector, one wide-range key per device (its coalescing), v1/gateway/telemetry"
    venv = CACHE / "tb-venv"

    def missing(self):
        if not (self.venv / "bin" / "thingsboard-gateway").is_file():
            return "thingsboard-gateway not installed (bash benchmarks/peers/setup.sh thingsboard)"
        return None

    def broker_conf(self, work):
        # The gateway subscribes to the RPC request topic it also publishes its own
        # getSessionLimits request to; ThingsBoard's broker never echoes it back, Mosquitto
        # would, so the gateway's user may only read the topics the platform writes.
        acl = work / "tb.acl"
        acl.write_text("topic readwrite #\n\nuser bench-token\ntopic write #\n"
                       "topic read v1/devices/me/rpc/response/+\n"
                       "topic read v1/devices/me/attributes/#\ntopic read v1/gateway/#\n")
        return f"acl_file {acl}\n"

    def answer(self, topic, payload):
        # Stand-in for the ThingsBoard server's one reply the gateway waits for before it
        # sends anything: the session limits (here: none).
        if not topic.startswith("v1/devices/me/rpc/request/"):
            return []
        if json.loads(payload).get("method") != "getSessionLimits":
            return []
        reply = {"rateLimits": {"messages": "0:0,", "telemetryMessages": "0:0,",
                                "telemetryDataPoints": "0:0,"},
                 "maxInflightMessages": 10000, "maxPayloadSize": 65536}
        return [(topic.replace("/request/", "/response/"), json.dumps(reply).encode())]

    def command(self, site, work, broker):
        pkg = next((self.venv / "lib").glob("python3*/site-packages/thingsboard_gateway"))
        conf = work / "tb-config"
        conf.mkdir(exist_ok=True)
        logs = json.loads((pkg / "config" / "logs.json").read_text())
        for handler in logs.get("handlers", {}).values():
            if "filename" in handler:
                handler["filename"] = str(work / Path(handler["filename"]).name)
        for logger in logs.get("loggers", {}).values():
            logger["level"] = os.environ.get("TB_BENCH_LOG_LEVEL", "WARNING")
        (conf / "logs.json").write_text(json.dumps(logs))
        gateway = json.loads((pkg / "config" / "tb_gateway.json").read_text())
        tb = gateway["thingsboard"]
        tb.update(host="127.0.0.1", port=broker, remoteConfiguration=False, remoteShell=False,
                  security={"type": "accessToken", "accessToken": "bench-token"})
        tb["statistics"]["enable"] = False
        gateway["storage"].update(type="memory", data_folder_path=str(work / "tb-data") + "/")
        gateway["connectors"] = [{"type": "modbus", "name": "Modbus", "configuration":
                                  "modbus.json"}]
        (conf / "tb_gateway.json").write_text(json.dumps(gateway, indent=1))
        slaves = [{
            "host": "127.0.0.1", "port": site.port(d), "type": "tcp", "method": "socket",
            "timeout": 1, "unitId": site.unit(d), "deviceName": f"ai{d:03d}",
            "deviceType": "analog_input", "pollPeriod": 1000, "sendDataOnlyOnChange": False,
            "byteOrder": "BIG", "wordOrder": "BIG", "retries": False,
            "connectAttemptTimeMs": 500, "connectAttemptCount": 2,
            "waitAfterFailedAttemptsMs": 30000, "attributes": [], "attributeUpdates": [],
            "rpc": [],
            # a "wide range" key: the connector splits it into maxRegistersPerRequest chunks
            "timeseries": [{"tag": "ai_${address}", "type": "16int", "functionCode": 4,
                            "objectsCount": 1, "address": f"0-{site.points - 1}"}],
        } for d in range(site.devices)]
        (conf / "modbus.json").write_text(json.dumps({"master": {"slaves": slaves}}, indent=1))
        env = {**os.environ, "TB_GW_CONFIG_DIR": str(conf), "PYTHONUNBUFFERED": "1"}
        return [str(self.venv / "bin" / "thingsboard-gateway")], env, work

    def parse(self, topic, payload):
        if topic != "v1/gateway/telemetry":
            return 0, []
        n, stamps = 0, []
        for entries in json.loads(payload).values():
            for entry in entries if isinstance(entries, list) else [entries]:
                values = entry.get("values", entry)
                k = len(values)
                n += k
                if "ts" in entry:
                    stamps.extend([entry["ts"] / 1000] * k)
        return n, stamps


class NodeRed(System):
    name = "Node-RED + contrib-modbus"
    mqtt_timestamp = "n/a: modbus-read messages carry no sample time (payload is the array)"
    notes = "one modbus-read node per device (input registers 0..n-1) -> mqtt out"
    prefix = CACHE / "nodered"

    def missing(self):
        if not (self.prefix / "node_modules" / "node-red" / "red.js").is_file():
            return "node-red not installed (bash benchmarks/peers/setup.sh nodered)"
        if not shutil.which("node"):
            return "node not found"
        return None

    def command(self, site, work, broker):
        flows: list[dict] = [{"id": "tab", "type": "tab", "label": "bench"},
                             {"id": "broker", "type": "mqtt-broker", "broker": "127.0.0.1",
                              "port": str(broker), "clientid": "nodered-bench",
                              "autoConnect": True, "usetls": False, "protocolVersion": "4",
                              "keepalive": "60", "cleansession": True},
                             {"id": "out", "type": "mqtt out", "z": "tab", "topic": "",
                              "qos": "0", "retain": "false", "broker": "broker", "wires": []}]
        for bus in range((site.devices + site.per_bus - 1) // site.per_bus):
            flows.append({"id": f"client{bus}", "type": "modbus-client", "name": f"bus{bus}",
                          "clienttype": "tcp", "bufferCommands": True, "stateLogEnabled": False,
                          "queueLogEnabled": False, "failureLogEnabled": False,
                          "tcpHost": "127.0.0.1", "tcpPort": str(site.first_port + bus),
                          "tcpType": "DEFAULT", "unit_id": "1", "commandDelay": "1",
                          "clientTimeout": "1000", "reconnectOnTimeout": True,
                          "reconnectTimeout": "2000", "parallelUnitIdsAllowed": True})
        for d in range(site.devices):
            flows.append({"id": f"read{d}", "type": "modbus-read", "z": "tab",
                          "name": f"ai{d:03d}", "topic": f"nodered/ai{d:03d}",
                          "showStatusActivities": False, "logIOActivities": False,
                          "showErrors": False, "unitid": str(site.unit(d)),
                          "dataType": "InputRegister", "adr": "0", "quantity": str(site.points),
                          "rate": "1", "rateUnit": "s", "delayOnStart": False,
                          "startDelayTime": "", "server": f"client{site.port(d) - site.first_port}",
                          "useIOFile": False, "ioFile": "", "useIOForPayload": False,
                          "emptyMsgOnFail": False, "x": 100, "y": 40 * d, "wires": [["out"]]})
        user = work / "nodered-user"
        user.mkdir(exist_ok=True)
        (user / "flows.json").write_text(json.dumps(flows, indent=1))
        link = user / "node_modules"
        if not link.exists():
            link.symlink_to(self.prefix / "node_modules")
        from firmware_sim.demo import free_port

        cmd = ["node", str(self.prefix / "node_modules" / "node-red" / "red.js"), "--userDir",
               str(user), "--port", str(free_port()), "flows.json"]
        return cmd, dict(os.environ), work

    def parse(self, topic, payload):
        if not topic.startswith("nodered/"):
            return 0, []
        values = json.loads(payload)
        return (len(values) if isinstance(values, list) else 1), []


SYSTEMS = {"floor": Floor, "floor_batched": FloorBatched, "minewatch": MineWatch, "collectd": Collectd, "thingsboard": ThingsBoard,
           "nodered": NodeRed}


def start(system: System, site: Site, work: Path, broker: int) -> subprocess.Popen:
    cmd, env, cwd = system.command(site, work, broker)
    log = open(work / "system.log", "wb")  # noqa: SIM115 - the child writes it for its lifetime
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
