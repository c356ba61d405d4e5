"""The floor of the peer comparison: the poller a developer writes by hand in an afternoon with
asyncio, struct and paho-mqtt, and nothing else (no detectors, no alert engine, no outbox).

    python -m benchmarks.peers.floor --first-port P --devices 200 --points 50 --broker 1883
        [--per value|device]

One Modbus TCP connection per bus (20 unit ids behind one listener, as the generated site has
them), its devices read in turn once a second with one FC4 request for all their input registers
(int16 x 0.01, the generated site's `analog_input_64ch`), decoded with `struct`. A reply that
does not answer the request drops the connection, which is opened again on the next poll: the
least a hand-written poller must do. Published either

- `--per value` (the floor of issue 18's table, and what collectd's MQTT writer does): every value
  as its own message `{"ts", "value"}` on `floor/<device>/<point>` at QoS 0;
- `--per device`: one JSON message `{"device", "ts", "values": {name: value}}` per device poll at
  QoS 1, the cheapest thing a careful hand would write.

Its CPU per 10,000 values is the 1.00 the benchmark's ratios are relative to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time

import paho.mqtt.client as mqtt

MBAP = struct.Struct(">HHHBBHH")  # transaction, protocol, length, unit, function, address, count
HEADER = struct.Struct(">HHHBBB")  # transaction, protocol, length, unit, function, byte count


class Bus:
    """One TCP connection to a simulator listener and the devices (unit ids) behind it."""

    def __init__(self, port: int, units: list[tuple[str, int]], points: int, client,
                 per_value: bool):
        self.port, self.units, self.points, self.client = port, units, points, client
        self.per_value = per_value
        self.names = [f"ai{p + 1}" for p in range(points)]
        self.values = struct.Struct(f">{points}h")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.tid = 0

    async def read(self, unit: int) -> tuple[float, ...] | None:
        if self.writer is None:
            try:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return None
        self.tid = (self.tid + 1) & 0xFFFF
        self.writer.write(MBAP.pack(self.tid, 0, 6, unit, 4, 0, self.points))
        try:
            head = await asyncio.wait_for(self.reader.readexactly(HEADER.size), 1.0)
            tid, _, _, u, fc, count = HEADER.unpack(head)
            body = await asyncio.wait_for(self.reader.readexactly(count), 1.0)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            self.close()
            return None
        if tid != self.tid or u != unit or fc != 4 or count != 2 * self.points:
            self.close()
            return None
        return tuple(v * 0.01 for v in self.values.unpack(body))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def run(self) -> None:
        next_poll = time.monotonic()
        while True:
            for device, unit in self.units:
                ts = time.time()
                values = await self.read(unit)
                if values is None:
                    continue
                stamp = int(ts * 1000)
                if self.per_value:
                    for name, value in zip(self.names, values, strict=True):
                        self.client.publish(f"floor/{device}/{name}",
                                            json.dumps({"ts": stamp, "value": value}), qos=0)
                    continue
                doc = {"device": device, "ts": stamp,
                       "values": dict(zip(self.names, values, strict=True))}
                self.client.publish(f"floor/{device}", json.dumps(doc), qos=1)
            next_poll += 1.0
            await asyncio.sleep(max(0.0, next_poll - time.monotonic()))


async def main_async(args: argparse.Namespace) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="floor-bench")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.broker)
    client.loop_start()
    buses = []
    for b in range((args.devices + args.per_bus - 1) // args.per_bus):
        devices = range(b * args.per_bus, min(args.devices, (b + 1) * args.per_bus))
        units = [(f"ai{d:03d}", d % args.per_bus + 1) for d in devices]
        buses.append(Bus(args.first_port + b, units, args.points, client,
                         args.per == "value"))
    await asyncio.gather(*(bus.run() for bus in buses))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first-port", type=int, required=True)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--per-bus", type=int, default=20)
    ap.add_argument("--broker", type=int, default=1883)
    ap.add_argument("--per", choices=("value", "device"), default="value")
    args = ap.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
