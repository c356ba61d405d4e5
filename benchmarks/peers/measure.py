"""Measuring instruments: CPU and memory of a process tree over time, the simulator's own counters,
and an MQTT subscriber that timestamps every arrival."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
ROOT = Path(__file__).resolve().parent.parent.parent


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, RSS kB) of one process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE_KB


def tree(root: int) -> dict[int, tuple[float, int]]:
    """CPU seconds and RSS kB of `root` and all its descendants (Node-RED, collectd threads and
    the Python gateways may fork helpers: the whole tree is the system's cost)."""
    stats: dict[int, tuple[int, float, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := _stat(int(entry))) is not None:
            stats[int(entry)] = s
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = stats[pid][1:]
            todo.extend(children.get(pid, []))
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat): the
    difference over a window says how loaded the machine was, other jobs included."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields) - idle) / TICK, sum(fields) / TICK


class TreeSampler:
    """Samples a process tree every `period` s in a thread: CPU seconds and summed RSS over time.
    CPU of children that exit in between is lost; the peers here keep theirs for the run."""

    def __init__(self, pid: int, period: float = 0.5):
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float, float]] = []  # (t, cpu s, rss MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = tree(self.pid)
            if t:
                self.samples.append((time.monotonic(), sum(c for c, _ in t.values()),
                                     sum(r for _, r in t.values()) / 1024))
            self._stop.wait(self.period)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, t0: float, t1: float) -> dict:
        """CPU seconds spent and peak RSS between monotonic times t0 and t1."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1] or self.samples[-1:]
        if not inside:
            return {"cpu_s": 0.0, "peak_rss_mb": 0.0}
        return {"cpu_s": inside[-1][1] - inside[0][1],
                "peak_rss_mb": max(s[2] for s in inside),
                "span_s": inside[-1][0] - inside[0][0]}


# The simulator's request counter: `firmware-sim serve --stats-file` when that option exists;
# until then a shim that runs the same CLI with every TCP listener sharing one SlaveStats and
# rewrites it every 0.5 s, so the benchmark can read the count at both ends of its window.
_SHIM = """
import atexit, json, sys
import firmware_sim.slave as ms
from firmware_sim.cli import main
stats = ms.SlaveStats()
real = ms.serve_tcp
async def shared(source, host, port, **kw):
    kw['stats'] = stats
    return await real(source, host, port, **kw)
ms.serve_tcp = shared
import os, threading, time
out = sys.argv.pop(1)
def dump():
    doc = {'requests': stats.requests, 'replies': stats.replies, 'cpu_seconds': stats.cpu_seconds}
    open(out + '.tmp', 'w').write(json.dumps(doc))
    os.replace(out + '.tmp', out)
def every_half_second():
    while True:
        time.sleep(0.5)
        dump()
threading.Thread(target=every_half_second, daemon=True).start()
atexit.register(dump)
sys.argv[0] = 'firmware-sim'
raise SystemExit(main())
"""


def _has_stats_file() -> bool:
    help_text = subprocess.run([sys.executable, "-m", "firmware_sim.cli", "serve", "--help"],
                               cwd=ROOT, capture_output=True, text=True).stdout
    return "--stats-file" in help_text


def start_simulator(site: Path, stats_file: Path, env: dict) -> tuple[subprocess.Popen, str]:
    """A fresh `firmware-sim serve` for one system, so its request counter is that system's."""
    args = ["serve", "--scenario", "rainstorm", "--site-config", str(site)]
    if _has_stats_file():
        cmd, how = [sys.executable, "-m", "firmware_sim.cli", *args, "--stats-file",
                    str(stats_file)], "firmware-sim serve --stats-file"
    else:
        cmd, how = [sys.executable, "-c", _SHIM, str(stats_file), *args], \
            "shared SlaveStats shim (firmware-sim serve has no --stats-file yet)"
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL), how


def simulator_requests(stats_file: Path) -> int | None:
    try:
        doc = json.loads(stats_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    for key in ("requests", "requests_served", "requests_received"):
        if key in doc:
            return int(doc[key])
    return None


class Subscriber:
    """Subscribes to '#' and hands (arrival epoch s, topic, payload) to `parse`, which returns
    (values delivered, [sample epoch s of each value with a timestamp])."""

    def __init__(self, port: int, parse: Callable[[str, bytes], tuple[int, list[float]]],
                 answer: Callable[[str, bytes], list[tuple[str, bytes]]] | None = None):
        self.parse = parse
        self.answer = answer
        self.values = 0
        self.delays: list[float] = []
        self.counting = False
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-recorder")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        arrived = time.time()
        for topic, payload in self.answer(msg.topic, msg.payload) if self.answer else []:
            client.publish(topic, payload, qos=1)
        n, stamps = self.parse(msg.topic, msg.payload)
        if self.counting:
            with self.lock:
                self.values += n
                self.delays.extend(arrived - s for s in stamps)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
