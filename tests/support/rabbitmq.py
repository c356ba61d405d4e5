"""A real RabbitMQ node with its MQTT plugin, on loopback, for the tests and the fleet benchmark.

RabbitMQ (Debian's rabbitmq-server, 3.10 here) is a clusterable broker a city may run, and its
MQTT plugin speaks MQTT 3.1.1 only, so it is where `protocol = "3.1.1"` meets a real broker.
Each node is private: its own node name, Erlang port mapper (epmd) port, distribution port, AMQP
and MQTT ports, data and log folders and cookie, all under one work folder, so it never touches a
system broker and two can run side by side. `stop()` ends the node and its epmd; `start()` again
on the same folder keeps the node's data (durable sessions), as a restarted broker does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.services import free_port, require_binary, wait_port

__all__ = ["RabbitMQ", "rabbitmq_server"]

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the package's own script, not the su wrapper


def rabbitmq_server() -> str:
    """The node's start script; a missing package fails under CI=true and skips elsewhere."""
    require_binary("rabbitmq-server", "/usr/sbin/rabbitmq-server")
    return require_binary(SERVER, SERVER)


class RabbitMQ:
    def __init__(self, workdir: Path, mqtt_port: int | None = None):
        self.dir = workdir
        self.port = mqtt_port or free_port()
        self.amqp_port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.node = f"minewatch{self.port}@localhost"
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "rabbitmq.out"

    def _env(self) -> dict[str, str]:
        d = self.dir
        return {**os.environ, "HOME": str(d), "ERL_EPMD_PORT": str(self.epmd_port),
                "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.amqp_port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
                "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid")}

    def start(self, timeout: float = 90.0) -> None:
        server = rabbitmq_server()
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            f"mqtt.listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "mqtt.allow_anonymous = true\nloopback_users = none\n"
            "log.console = false\nlog.file.level = warning\n")
        (d / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        cookie = d / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(f"minewatch-{self.port}")
            cookie.chmod(0o400)
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-daemon"], check=True)
        self.proc = subprocess.Popen([server], env=self._env(), cwd=d, stdout=open(  # noqa: SIM115
            self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"RabbitMQ's MQTT listener did not open in {timeout:g} s: "
                               + self.log.read_text(errors="replace")[-2000:]) from None

    def stop(self, timeout: float = 30.0) -> None:
        """End the node (SIGTERM to its process group: a clean Erlang shutdown) and its epmd."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _listening(self.port):
            time.sleep(0.1)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
