"""A city's fleet on one broker, and the broker restarted under it (issue 18).

    python -m benchmarks.fleet [--gateways 20] [--brokers mosquitto,rabbitmq] [--down 6]

Each gateway is a `minewatch run` of the example tailings pond (3 points, receipts on) with its
own site code, gateway id, MQTT client id and state folder; all poll one `firmware-sim serve` of
the rainstorm on one simulated clock (time scale 3000: the 72 h storm in 86 s, its alerts from
the 37th second on) and publish to one broker: Mosquitto with persistence over MQTT 5, and a
RabbitMQ node with its MQTT plugin over MQTT 3.1.1 (`protocol = "3.1.1"`, the plugin speaks no
other). A platform subscriber (a persistent session) records every event and answers receipts.
While the alerts are coming the broker is stopped, kept down `--down` seconds and started again
on its data. Per broker: how long the broker was away, the time from its return until every
gateway is connected again and the spread of their reconnects (from each gateway's own log:
jittered backoff, `gateway/uplink/mqtt.py`), and whether every event each gateway committed
reached the platform (its outbox's alert log against what the platform holds, by event_id), with
the duplicates the platform dropped. Prints a table, writes results/fleet.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from firmware_sim.demo import site_for_ports
from firmware_sim.scenario import load_scenario
from tests.support.services import Mosquitto, MqttRecorder, free_port, python_cli, wait_for_line

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SCALE = 3000.0
STOP_AT = 40.0  # real seconds after the anchor: simulated hour 33, between blue and red


def _configs(work: Path, n: int, sim_port: int, mqtt_port: int, protocol: str) -> list[Path]:
    out = []
    for k in range(n):
        d = work / f"gw{k:02d}"
        d.mkdir(parents=True)
        out.append(site_for_ports(ROOT / "config" / "examples" / "tailings_pond.toml", d,
                                  modbus_port=sim_port, mqtt_port=mqtt_port, replace={
                                      'code = "130825-TP001"': f'code = "FLEET-{k:02d}"',
                                      'id = "gw01"': f'id = "gw{k:02d}"',
                                      'protocol = "5"': f'protocol = "{protocol}"'}))
    return out


def _connects(log: Path) -> list[float]:
    """Wall times (epoch s) of the gateway's MQTT connects, from its JSON log."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if '"mqtt_connected"' in line:
            stamp = json.loads(line)["ts"]
            out.append(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=UTC).timestamp())
    return out


def _committed(state: Path) -> list[dict]:
    from gateway.outbox import Outbox

    ob = Outbox(state / "outbox.sqlite")
    try:
        return ob.alert_log(limit=1_000_000)
    finally:
        ob.close()


class _Broker:
    """Mosquitto (persistent) or a RabbitMQ node, with the protocol the gateways use on it."""

    def __init__(self, kind: str, work: Path):
        self.kind = kind
        if kind == "mosquitto":
            binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            self.impl = Mosquitto(binary, work / "mosquitto", free_port(), persistent=True)
            self.protocol = "5"
        else:
            from tests.support.rabbitmq import RabbitMQ

            self.impl = RabbitMQ(work / "rabbitmq")
            self.protocol = "3.1.1"
        self.port = self.impl.port

    def start(self) -> None:
        self.impl.start()

    def stop(self) -> None:
        self.impl.stop()


def run_fleet(kind: str, n: int, down: float, work: Path) -> dict:
    work.mkdir(parents=True)
    broker = _Broker(kind, work)
    broker.start()
    scenario = load_scenario("rainstorm")
    sim_port = free_port()
    configs = _configs(work, n, sim_port, broker.port, broker.protocol)
    # the gateways start (numba, kernels) before simulated time leaves the epoch
    anchor = time.time() + 8.0 + 0.6 * n
    clock = ["--epoch", str(scenario.epoch), "--time-scale", str(SCALE), "--anchor", str(anchor)]
    until = str(scenario.epoch + scenario.duration)
    recorder = MqttRecorder(broker.port, "minewatch/v1/#", protocol=broker.protocol)
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(configs[0]), "--listen", f"127.0.0.1:{sim_port}", *clock,
                     log=work / "sim.log")
    gateways: list[subprocess.Popen] = []
    logs = [c.parent / "gateway.log" for c in configs]
    try:
        wait_for_line(work / "sim.log", '"listening"')
        for cfg, log in zip(configs, logs, strict=True):
            gateways.append(python_cli("gateway.cli", "run", "--config", str(cfg), *clock,
                                       "--until", until, log=log))
        deadline = anchor + 30
        while time.time() < deadline and not all(_connects(x) for x in logs):
            time.sleep(0.2)
        online_before = sum(bool(_connects(x)) for x in logs)
        time.sleep(max(0.0, anchor + STOP_AT - time.time()))
        t_stop = time.time()
        broker.stop()
        time.sleep(down)
        broker.start()
        t_up = time.time()
        deadline = t_up + 120
        back: list[float | None] = [None] * n
        while time.time() < deadline and None in back:
            for k, log in enumerate(logs):
                after = [t for t in _connects(log) if t > t_stop]
                back[k] = after[0] if after else None
            time.sleep(0.2)
        for gw in gateways:
            gw.wait(timeout=max(30.0, anchor + scenario.duration / SCALE + 60 - time.time()))
        time.sleep(3.0)  # the last receipts and resends
    finally:
        for gw in gateways:
            if gw.poll() is None:
                gw.kill()
                gw.wait()
        sim.terminate()
        sim.wait(10)
        recorder.close()
        broker.stop()
    received: dict[str, list[str]] = {}
    for topic, doc, _ in recorder.messages:
        if topic.endswith(("/alert", "/fault")):
            received.setdefault(f"{doc['site']}/{doc['gateway']}", []).append(doc["event_id"])
    lost, committed, duplicates, exits = 0, 0, 0, []
    for k, cfg in enumerate(configs):
        events = _committed(cfg.parent / "state")
        got = received.get(f"FLEET-{k:02d}/gw{k:02d}", [])
        committed += len(events)
        lost += len({e["event_id"] for e in events} - set(got))
        duplicates += len(got) - len(set(got))
        exits.append(gateways[k].returncode)
    returned = [t - t_up for t in back if t is not None]
    return {
        "broker": kind, "protocol": broker.protocol, "gateways": n,
        "online_before": online_before, "broker_away_s": round(t_up - t_stop, 2),
        "reconnected": len(returned),
        "all_back_after_s": round(max(returned), 2) if len(returned) == n else None,
        "first_back_after_s": round(min(returned), 2) if returned else None,
        "reconnect_spread_s": round(max(returned) - min(returned), 2) if returned else None,
        "median_back_after_s": round(statistics.median(returned), 2) if returned else None,
        "events_committed": committed, "events_lost": lost,
        "duplicates_dropped_by_event_id": duplicates,
        "gateway_exit_codes": sorted(set(exits)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--brokers", default="mosquitto,rabbitmq")
    ap.add_argument("--down", type=float, default=6.0, help="seconds the broker stays down")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="minewatch-bench-fleet-"))
    rows = []
    for kind in [b.strip() for b in args.brokers.split(",") if b.strip()]:
        if kind == "rabbitmq" and not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
            rows.append({"broker": kind, "error": "rabbitmq-server is not installed "
                         "(apt-get install rabbitmq-server)"})
            continue
        print(f"-- {args.gateways} gateways on {kind}", flush=True)
        try:
            rows.append(run_fleet(kind, args.gateways, args.down, root / kind))
        except Exception as exc:  # the row says why; the command fails
            rows.append({"broker": kind, "error": str(exc)})
    load = os.getloadavg()
    print(f"\n== fleet: {args.gateways} example ponds on one broker, restarted while the storm's "
          f"alerts come (2-core machine, load {load[0]:.1f} at the end)")
    print(f"{'broker (protocol)':24s} {'away s':>7s} {'all back s':>11s} {'spread s':>9s} "
          f"{'median s':>9s} {'events':>7s} {'lost':>5s} {'dups':>5s}")
    failed = False
    for r in rows:
        if "error" in r:
            print(f"{r['broker']:24s} error: {r['error']}")
            failed = True
            continue
        failed |= r["events_lost"] > 0 or r["all_back_after_s"] is None
        print(f"{r['broker'] + ' (' + r['protocol'] + ')':24s} {r['broker_away_s']:7.1f} "
              f"{r['all_back_after_s'] if r['all_back_after_s'] is not None else 'n/a':>11} "
              f"{r['reconnect_spread_s']:9.2f} {r['median_back_after_s']:9.2f} "
              f"{r['events_committed']:7d} {r['events_lost']:5d} "
              f"{r['duplicates_dropped_by_event_id']:5d}")
    print("(all back / spread / median: seconds from the broker's return to each gateway's "
          "reconnect, from the gateways' own logs; lost: committed events the platform never "
          "got; dups: resends the platform dropped by event_id)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fleet.json").write_text(json.dumps({
        "rows": rows, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg": load, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
        indent=1))
    print(f"written: {RESULTS / 'fleet.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
