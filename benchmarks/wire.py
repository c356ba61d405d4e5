"""Telemetry on the wire: bytes per value and encoding cost of each `[uplink.mqtt] encoding`.

    python -m benchmarks.wire [--devices 200] [--points 50] [--seconds 10]

The generated 10,000-point site (benchmarks.startup: 200 devices x 50 points, one poll a second
each) runs through the gateway's own telemetry stage (`gateway/telemetry.py`, report by
exception with no deadband: every value is sent) for `--seconds` of simulated polls, with two
kinds of value: the generated site's own (int16 registers x 0.01, short decimals) and float32
registers (a radar or GNSS value widened to float64, the usual case on a real site). Per
encoding: payload bytes per value (what the outbox and the MQTT link carry, without MQTT's few
header bytes per message), the link that takes at 10,000 values/s, and the CPU microseconds per
value to encode. Every payload is decoded back and checked to hold every value. Prints a table,
writes results/wire.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.startup import generated_site
from gateway.batch import Batch
from gateway.config import load_site
from gateway.encodings import ENCODINGS
from gateway.encodings.decode import decode
from gateway.telemetry import Telemetry

RESULTS = Path(__file__).resolve().parent / "results"
T0 = 1_790_000_000.0
TARGET = 20.0  # bytes per value by default (issue 18)


def _values(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "int16 x 0.01":
        return np.round(rng.normal(40.0, 15.0, n) * 100.0) * 0.01
    return rng.normal(1250.0, 30.0, n).astype(np.float32).astype(np.float64)


def measure(cfg, encoding: str, kind: str, seconds: int) -> dict:
    tel = Telemetry(cfg, "minewatch/v1/BENCH/gw/telemetry", encoding=encoding)
    rng = np.random.default_rng(1)
    devices: dict[str, list[int]] = {}
    for p in cfg.points:
        devices.setdefault(p.device, []).append(p.index)
    idx = {d: np.array(v, np.int64) for d, v in devices.items()}
    tel.due(T0)
    payloads: list[bytes] = []
    encode_s = 0.0
    for s in range(seconds):
        for k, (d, i) in enumerate(idx.items()):
            t = T0 + s + k / len(idx)
            tel.add(Batch(d, t, i, _values(kind, rng, i.size), np.zeros(i.size, np.uint8)))
            if k % 40 == 39:  # the daemon's loop gathers 0.2 s of polls into a message
                started = time.perf_counter()
                payloads += [p for _, p in tel.changes(t)]
                encode_s += time.perf_counter() - started
        started = time.perf_counter()
        payloads += [p for _, p in tel.changes(T0 + s + 1)]
        encode_s += time.perf_counter() - started
    values = sum(len(decode(p)["points"]) for p in payloads)
    assert values == seconds * len(cfg.points), (values, seconds * len(cfg.points))
    size = sum(len(p) for p in payloads)
    return {"bytes_per_value": size / values, "messages": len(payloads),
            "mbit_s_at_10k": size / values * 8 * 10_000 / 1e6,
            "encode_us_per_value": encode_s / values * 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-wire-"))
    site = generated_site(work, args.devices, args.points, 30000)
    text = site.read_text() + '\n[uplink.mqtt]\nhost = "127.0.0.1"\n'
    site.write_text(text)
    cfg = load_site(site)
    # "sparkplug" stores the "protobuf" payload; on its target it is a session, not a format
    wire = [e for e in ENCODINGS if e != "sparkplug"]
    rows = {kind: {e: measure(cfg, e, kind, args.seconds) for e in wire}
            for kind in ("int16 x 0.01", "float32")}
    print(f"\n== telemetry on the wire: {len(cfg.points)} points, {args.points} a device, every "
          f"value sent ({args.seconds} s of polls; payload bytes, MQTT headers excluded)")
    print(f"{'encoding':10s}" + "".join(f"{k + ': B/value':>24s}{'Mbit/s @10k':>13s}"
                                        for k in rows) + f"{'encode us/value':>17s}")
    for e in wire:
        cells = "".join(f"{rows[k][e]['bytes_per_value']:24.1f}{rows[k][e]['mbit_s_at_10k']:13.2f}"
                        for k in rows)
        print(f"{e:10s}{cells}{rows['float32'][e]['encode_us_per_value']:17.2f}")
    default = rows["int16 x 0.01"]["compact"]["bytes_per_value"]
    print(f"(default encoding: compact, {default:.1f} bytes a value on the generated site; "
          f"target <= {TARGET:g})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "wire.json").write_text(json.dumps({"points": len(cfg.points), "rows": rows},
                                                  indent=1))
    print(f"written: {RESULTS / 'wire.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
