"""Uplink benchmark: alert latency (sample to subscriber, p50/p99) and durable outbox throughput.

    python -m benchmarks.uplink [--events 400] [--drain 2000]

Measured in one run against a real Mosquitto on loopback. Latency covers the gateway's own path
for a sample that crosses red: detect (numba kernel) -> alert engine -> outbox commit (SQLite WAL,
synchronous=FULL, one fsync'd transaction per event) -> MQTT 5 publish -> broker -> subscriber.
It excludes the Modbus poll period, which bounds how old a sample can be when it is read.
Throughput: events committed per second (the engine's one-transaction-per-event path), and
events drained per second (publish, PUBACK, delete, one in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from gateway.numba_cache import configure as numba_cache_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def _run(n_events: int, n_drain: int) -> dict:
    from paho.mqtt.client import CallbackAPIVersion, Client

    from firmware_sim.demo import free_port, site_for_ports
    from gateway.alerts.engine import AlertEngine
    from gateway.batch import Batch
    from gateway.config import load_site
    from gateway.detect import DetectStage
    from gateway.outbox import Outbox
    from gateway.uplink.mqtt import MqttPublisher
    from tests.support.services import Mosquitto, require_binary

    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-uplink-"))
    broker = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), work / "mqtt",
                       free_port())
    broker.start()
    received: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        now = time.time()
        doc = json.loads(msg.payload)
        with lock:
            received.setdefault(doc["event_id"], now)

    sub = Client(CallbackAPIVersion.VERSION2, client_id="bench-platform")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("minewatch/v1/+/+/alert", qos=1)
    sub.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    subscribed.wait(10)

    path = site_for_ports(ROOT / "config" / "examples" / "tailings_pond.toml", work,
                          modbus_port=free_port(), mqtt_port=broker.port)
    # the benchmark raises and clears on purpose many times a second: no storm control here
    path.write_text(path.read_text() + "\n[alerts]\nstorm_raises = 1000000\n")
    cfg = load_site(path)
    outbox = Outbox(cfg.outbox.path)
    engine = AlertEngine(cfg, outbox, "minewatch/v1")
    detect = DetectStage(cfg)
    publisher = MqttPublisher(cfg, outbox, time.time)
    await publisher.start()
    drain = asyncio.create_task(publisher.run())
    await asyncio.wait_for(publisher.connected.wait(), 10)

    # 1. latency: a red sample, then three low ones (the detector's clear debounce), repeated
    idx = np.arange(3, dtype=np.int64)
    observed: dict[str, float] = {}
    k = 0
    while len(observed) < n_events and k < 40 * n_events:
        for v in (1256.8, 1250.0, 1250.0, 1250.0):
            t = time.time()
            values = np.array([v, 13.0, 14.0])
            batch = Batch("radar_wl1", t, idx, values, np.zeros(3, np.uint8))
            for ev in engine.process(t, idx, values, batch.quality, detect.process(batch)):
                observed[ev["event_id"]] = t
            publisher.notify()
            k += 1
            await asyncio.sleep(0.01)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(received) < len(observed):
        await asyncio.sleep(0.05)
    latencies = [1000 * (received[e] - t) for e, t in observed.items() if e in received]

    # 2. durable commits: one transaction per event, as the engine commits them
    drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)
    template = {"kind": "safety", "state": "raised", "level": "red", "point": "WL-01",
                "alert_id": str(uuid.uuid4()), "observed_at": int(time.time() * 1000),
                "message": {"zh": "x" * 40, "en": "x" * 80}}
    topic = engine.alert_topic
    t0 = time.perf_counter()
    for _ in range(n_drain):
        outbox.commit_events([(topic, {**template, "event_id": str(uuid.uuid4())})], [])
    commit_s = time.perf_counter() - t0

    # 3. drain: publish, PUBACK, delete, one in flight
    before = len(received)
    t0 = time.perf_counter()
    drain = asyncio.create_task(publisher.run())
    while outbox.depth()["events"] and time.perf_counter() - t0 < 120:
        await asyncio.sleep(0.01)
    drain_s = time.perf_counter() - t0
    drained = n_drain - outbox.depth()["events"]
    drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)
    await publisher.stop()
    time.sleep(0.5)
    sub.loop_stop()
    broker.stop()
    return {
        "events_for_latency": len(observed),
        "delivered": sum(1 for e in observed if e in received),
        "latency_ms_p50": _percentile(latencies, 50),
        "latency_ms_p99": _percentile(latencies, 99),
        "latency_ms_max": max(latencies),
        "outbox_commits_per_s": n_drain / commit_s,
        "outbox_drain_per_s": drained / drain_s,
        "drained": drained,
        "received_during_drain": len(received) - before,
        "batches": k,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--drain", type=int, default=2000)
    args = parser.parse_args()
    numba_cache_dir()
    r = asyncio.run(_run(args.events, args.drain))
    r["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()}
    print("\n== uplink: alert latency and durable outbox throughput (one run, loopback Mosquitto)")
    print(f"{'figure':44s} {'value':>12s}")
    rows = [("alert latency p50 (sample -> subscriber), ms", r["latency_ms_p50"]),
            ("alert latency p99, ms", r["latency_ms_p99"]),
            ("alert latency max, ms", r["latency_ms_max"]),
            ("events delivered / observed", f"{r['delivered']}/{r['events_for_latency']}"),
            ("outbox commits/s (1 fsync'd txn per event)", r["outbox_commits_per_s"]),
            ("outbox drain msgs/s (publish+PUBACK+delete)", r["outbox_drain_per_s"])]
    for name, value in rows:
        print(f"{name:44s} {value:>12.2f}" if isinstance(value, float) else f"{name:44s} {value:>12}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "uplink.json").write_text(json.dumps(r, indent=2))
    print(f"written: {RESULTS / 'uplink.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
