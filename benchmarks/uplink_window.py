"""Uplink window benchmark: a backlog drained over a slow link, one message in flight against a
window, and how long a new red alert waits behind the backlog.

    python -m benchmarks.uplink_window [--delay 0.1] [--events 20] [--telemetry 300]
                                       [--red-after 0.5] [--windows 1,20]

For each window, in one run: the gateway's own publisher (`gateway/uplink/mqtt.py`, its outbox,
SQLite with fsync) drains to a real Mosquitto on loopback through a delay proxy that holds every
byte `--delay` seconds each way (`tests/support/delay_proxy.py`; 0.1 s each way is a 4G DTU
link's round trip). The outbox holds what an outage leaves behind: `--events` alert events
spread among `--telemetry` telemetry messages (about 600 bytes each, a stats window of a small
site). `--red-after` seconds after the publisher connects, the engine commits a new red alert.
The platform's subscriber sits beside the broker (no delay), as the city's does. Printed: the
drain rate (backlog messages per second, from the connect to the last backlog message at the
subscriber), the drain time, the red alert's wait (commit to subscriber), and each window's
figures over max_inflight=1's. The default windows are 1, the default `max_inflight` and 20.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def backlog_plan(n_events: int, n_telemetry: int) -> list[bool]:
    """The backlog in commit order, True for an event: the events spread evenly among the
    telemetry, as an outage's alerts fall among its statistics windows.

    >>> "".join("E" if e else "t" for e in backlog_plan(3, 6))
    'EttEttEtt'
    >>> backlog_plan(2, 0)
    [True, True]
    """
    total = n_events + n_telemetry
    at = {i * total // n_events for i in range(n_events)} if n_events else set()
    return [i in at for i in range(total)]


def default_windows(default: int) -> list[int]:
    """Stop-and-wait, the configured default, and 20 (the issue's figure) if it differs.

    >>> default_windows(20), default_windows(8)
    ([1, 20], [1, 8, 20])
    """
    return sorted({1, default, 20})


def against_one(runs: list[dict]) -> list[dict]:
    """Each window's figures over max_inflight=1's: how many times faster it drains and how many
    times shorter the red alert waits (empty without a run at 1)."""
    one = next((r for r in runs if r["window"] == 1), None)
    if one is None:
        return []
    out = []
    for r in runs:
        if r["window"] == 1:
            continue
        waits = (one["red_alert_wait_s"], r["red_alert_wait_s"])
        out.append({"window": r["window"],
                    "drain_rate_x": r["drain_per_s"] / one["drain_per_s"],
                    "drain_time_x": r["drain_s"] / one["drain_s"],
                    "red_alert_wait_shorter_x": waits[0] / waits[1] if None not in waits
                    and waits[1] > 0 else None})
    return out


class Platform:
    """The platform's subscriber: when each message first arrived (a QoS 1 copy sent again
    counts once), by event id or by the benchmark's telemetry number."""

    def __init__(self, port: int, client_id: str):
        from paho.mqtt.client import CallbackAPIVersion, Client

        self.lock = threading.Lock()
        self.arrived: dict[str, float] = {}
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("minewatch/v1/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError("the platform's subscriber could not subscribe")

    def _on_message(self, client, userdata, msg) -> None:
        now = time.monotonic()
        kind = msg.topic.rpartition("/")[2]
        if kind not in ("alert", "telemetry"):
            return  # status and health
        doc = json.loads(msg.payload)
        key = doc["event_id"] if kind == "alert" else f"t{doc['n']}"
        with self.lock:
            self.arrived.setdefault(key, now)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _fill(outbox, base: str, n_events: int, n_telemetry: int) -> set[str]:
    """Commit the outage's backlog; returns the keys the platform must see."""
    template = {"kind": "safety", "state": "escalated", "level": "orange", "point": "WL-01",
                "alert_id": "bench-wl-01",
                "message": {"zh": "库水位达到橙色预警" * 3, "en": "water level orange " * 6}}
    keys: set[str] = set()
    n = 0
    for is_event in backlog_plan(n_events, n_telemetry):
        if is_event:
            eid = str(uuid.uuid4())
            outbox.commit_events([(f"{base}/alert", {**template, "event_id": eid,
                                                     "observed_at": int(time.time() * 1000)})],
                                 [])
            keys.add(eid)
            continue
        doc = {"schema": "minewatch/telemetry/1", "kind": "stats", "n": n,
               "points": [{"point": f"P{i}", "count": 30, "min": 1.0, "max": 2.0, "mean": 1.5,
                           "quality": 0} for i in range(6)]}
        outbox.add_telemetry([(f"{base}/telemetry", json.dumps(doc).encode())])
        keys.add(f"t{n}")
        n += 1
    outbox.flush()
    return keys


async def _drain(cfg, work: Path, broker_port: int, proxy, window: int, args) -> dict:
    from gateway.outbox import Outbox
    from gateway.uplink.mqtt import MqttPublisher

    m = dataclasses.replace(cfg.mqtt, max_inflight=window, receipts=False,
                            client_id=f"bench-window-{window}-{os.getpid()}")
    cfg = dataclasses.replace(cfg, mqtt=m, uplinks=(m,))
    outbox = Outbox(work / f"outbox-{window}.sqlite")
    base = f"minewatch/v1/{cfg.site.code}/{cfg.gateway.id}"
    backlog = _fill(outbox, base, args.events, args.telemetry)
    depth = outbox.depth()
    assert depth["events"] + depth["telemetry"] == len(backlog), depth
    sub = Platform(broker_port, f"bench-platform-{window}-{os.getpid()}")
    links = proxy.connections
    publisher = MqttPublisher(cfg, outbox, time.time)
    await publisher.start()
    drain = asyncio.create_task(publisher.run())
    try:
        await asyncio.wait_for(publisher.connected.wait(), 30)
        t0 = time.monotonic()
        await asyncio.sleep(args.red_after)
        red_id = str(uuid.uuid4())
        outbox.commit_events([(f"{base}/alert", {
            "kind": "safety", "state": "raised", "level": "red", "point": "WL-02",
            "alert_id": "bench-wl-02", "event_id": red_id,
            "observed_at": int(time.time() * 1000),
            "message": {"zh": "库水位达到红色预警", "en": "water level red"}})], [])
        committed = time.monotonic()
        publisher.notify()
        # stop-and-wait needs a round trip a message; past four times that, something is wrong
        deadline = t0 + 30 + 4 * 2 * args.delay * (len(backlog) + 1)
        while time.monotonic() < deadline:
            with sub.lock:
                if red_id in sub.arrived and backlog <= sub.arrived.keys():
                    break
            await asyncio.sleep(0.02)
    finally:
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
        await publisher.stop()
        sub.close()
        outbox.close()
    with sub.lock:
        seen = [sub.arrived[k] for k in backlog if k in sub.arrived]
        red = sub.arrived.get(red_id)
    drain_s = (max(seen) - t0) if seen else float("nan")
    return {"window": window, "backlog": len(backlog), "delivered": len(seen),
            "drain_s": drain_s, "drain_per_s": len(seen) / drain_s if seen else 0.0,
            "red_alert_wait_s": red - committed if red is not None else None,
            "red_alert_committed_after_s": committed - t0,
            "proxy_connections": proxy.connections - links}


async def _run(args) -> dict:
    from firmware_sim.demo import free_port, site_for_ports
    from gateway.config import load_site
    from tests.support.delay_proxy import DelayProxy
    from tests.support.services import Mosquitto, require_binary

    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-window-"))
    broker = Mosquitto(require_binary("mosquitto", "/usr/sbin/mosquitto"), work / "mqtt",
                       free_port())
    broker.start()
    proxy = DelayProxy(broker.port, delay=args.delay).start()
    try:
        cfg = load_site(site_for_ports(ROOT / "config" / "examples" / "tailings_pond.toml",
                                       work, modbus_port=free_port(), mqtt_port=proxy.port))
        windows = args.windows or default_windows(cfg.mqtt.max_inflight)
        runs = [await _drain(cfg, work, broker.port, proxy, w, args) for w in windows]
    finally:
        proxy.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"delay_each_way_s": args.delay, "events": args.events,
            "telemetry": args.telemetry, "red_after_s": args.red_after,
            "default_max_inflight": cfg.mqtt.max_inflight, "runs": runs,
            "against_max_inflight_1": against_one(runs)}


def _windows(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if any(not 1 <= v <= 1000 for v in values):
        raise argparse.ArgumentTypeError(f"each must be 1..1000 (max_inflight's "
                                         f"range), got {text!r}")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds each way (0.1)")
    parser.add_argument("--events", type=int, default=20, help="alert events in the backlog")
    parser.add_argument("--telemetry", type=int, default=300,
                        help="telemetry messages in the backlog")
    parser.add_argument("--red-after", type=float, default=0.5,
                        help="seconds after the connect that the new red alert is committed")
    parser.add_argument("--windows", type=_windows, default=None,
                        help="max_inflight values, comma-separated (1, the default, 20)")
    args = parser.parse_args()
    if args.events < 0 or args.telemetry < 0 or args.events + args.telemetry == 0:
        parser.error("--events and --telemetry: at least one message, none negative")
    r = asyncio.run(_run(args))
    r["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}
    print(f"\n== uplink window: a backlog of {args.events} events and {args.telemetry} telemetry "
          f"messages over a link of {1000 * args.delay:g} ms each way (real Mosquitto); a new "
          f"red alert committed {args.red_after:g} s after the connect")
    print(f"{'max_inflight':>12s} {'delivered':>10s} {'drain msgs/s':>13s} {'drain time s':>13s} "
          f"{'new red alert waits s':>22s} {'connections':>12s}")
    for run in r["runs"]:
        wait = run["red_alert_wait_s"]
        print(f"{run['window']:>12d} {run['delivered']:>5d}/{run['backlog']:<4d} "
              f"{run['drain_per_s']:>13.1f} {run['drain_s']:>13.1f} "
              f"{'never' if wait is None else f'{wait:.2f}':>22s} {run['proxy_connections']:>12d}")
    for x in r["against_max_inflight_1"]:
        shorter = x["red_alert_wait_shorter_x"]
        print(f"max_inflight {x['window']} / 1: drains {x['drain_rate_x']:.1f}x faster "
              f"(drain time x{x['drain_time_x']:.3f}); the red alert waits "
              f"{'?' if shorter is None else f'{shorter:.1f}x'} shorter")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "uplink_window.json").write_text(json.dumps(r, indent=2))
    print(f"written: {RESULTS / 'uplink_window.json'}")
    ok = all(run["red_alert_wait_s"] is not None and run["delivered"] == run["backlog"]
             for run in r["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
