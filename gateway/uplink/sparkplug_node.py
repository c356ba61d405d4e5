"""A MineWatch gateway as a Sparkplug B edge node (Sparkplug 3.0.0): its topics, its message
sequence, and the payloads of its births, deaths and data. Pure logic, no I/O: the session
(`sparkplug.py`) publishes what it gives and keeps `bdSeq` on disk.

Topics are `spBv1.0/<group_id>/<type>/<edge_node_id>[/<device_id>]`: the group is the target's
`sparkplug_group` (default the site code), the edge node the gateway id, a device each Modbus
device with points. Formula points belong to no device: they are the node's own metrics (in
NBIRTH, and NDATA when they change).

- NBIRTH (seq 0): the metrics `bdSeq` (Int64, the number the will's NDEATH carries too) and
  `Node Control/Rebirth` (Boolean, false), then every formula point.
- DBIRTH per device (seq 1, 2, ...): every point of the device, Double, with its last known
  value (null before its first read) and read time, and the properties `unit` and `quantity`
  (String) and `quality` (UInt32, MineWatch's code: 0 good ... 5 comm_fail).
- DDATA / NDATA: the points of one telemetry message by device, each metric with its read time,
  its value (or null) and `quality` (so a return to good is said too); a point in a maintenance
  window also carries `maintenance` = true. No `datatype` (the birth gave it) and no aliases.
- `seq` counts every NBIRTH, DBIRTH, NDATA and DDATA of a session from 0 and wraps after 255;
  a rebirth starts it again at 0 with the same `bdSeq`. NDEATH carries no seq.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gateway.encodings import Catalog
from gateway.encodings.sparkplug import (
    BOOLEAN,
    DOUBLE,
    INT64,
    STRING,
    UINT32,
    payload_class,
    set_properties,
)

__all__ = ["BOOLEAN", "NAMESPACE", "REBIRTH", "SparkplugNode"]

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"


class SparkplugNode:
    """One edge node: `births`, `data` and `death` give (topic, payload) pairs in the order they
    must be published; `seq` is the number the next NBIRTH/DBIRTH/DATA message carries."""

    def __init__(self, group: str, catalog: Catalog):
        self.group = group
        self.edge = catalog.gateway
        self.catalog = catalog
        self.Payload = payload_class()
        self.devices: list[str] = list(dict.fromkeys(d for d in catalog.devices if d))
        self.points: dict[str, list[int]] = {d: [] for d in ["", *self.devices]}
        for i, d in enumerate(catalog.devices):
            self.points[d].append(i)
        self.index = {name: i for i, name in enumerate(catalog.names)}
        n = len(catalog.names)
        # what the host was last told of each point: births repeat it
        self.value = [math.nan] * n
        self.observed: list[float | None] = [None] * n  # epoch ms
        self.quality = [0] * n
        self.held = [False] * n
        self.seq = 0

    def topic(self, kind: str, device: str = "") -> str:
        base = f"{NAMESPACE}/{self.group}/{kind}/{self.edge}"
        return f"{base}/{device}" if device else base

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (seq + 1) % 256
        return seq

    def births(self, bdseq: int, ts_ms: int) -> list[tuple[str, bytes]]:
        """NBIRTH with `bdseq`, then a DBIRTH per device; seq starts again at 0."""
        self.seq = 0
        p = self.Payload(timestamp=ts_ms, seq=self._next_seq())
        p.metrics.add(name="bdSeq", timestamp=ts_ms, datatype=INT64, long_value=bdseq)
        p.metrics.add(name=REBIRTH, timestamp=ts_ms, datatype=BOOLEAN, boolean_value=False)
        self._birth_metrics(p, self.points[""], ts_ms)
        out = [(self.topic("NBIRTH"), p.SerializeToString())]
        for device in self.devices:
            p = self.Payload(timestamp=ts_ms, seq=self._next_seq())
            self._birth_metrics(p, self.points[device], ts_ms)
            out.append((self.topic("DBIRTH", device), p.SerializeToString()))
        return out

    def _birth_metrics(self, p, points: Iterable[int], ts_ms: int) -> None:
        c = self.catalog
        for i in points:
            m = p.metrics.add(name=c.names[i], datatype=DOUBLE,
                              timestamp=self.observed[i] if self.observed[i] is not None
                              else ts_ms)
            _value(m, self.value[i])
            set_properties(m, ("unit", STRING, c.units[i]), ("quantity", STRING, c.quantities[i]),
                   ("quality", UINT32, self.quality[i]),
                   *((("maintenance", BOOLEAN, True),) if self.held[i] else ()))

    def death(self, bdseq: int, ts_ms: int) -> tuple[str, bytes]:
        """NDEATH: the will, and what a clean stop says; `bdSeq` as in the NBIRTH it ends."""
        p = self.Payload(timestamp=ts_ms)
        p.metrics.add(name="bdSeq", timestamp=ts_ms, datatype=INT64, long_value=bdseq)
        return self.topic("NDEATH"), p.SerializeToString()

    def data(self, doc: dict, ts_ms: int) -> list[tuple[str, bytes]]:
        """The DDATA (and NDATA) of one decoded telemetry message (`gateway/encodings/decode.py`
        shape, kind values, realtime or measured): one message per device it speaks of, in the
        order of the node's devices. Points the site does not have are left out."""
        by_device: dict[str, list[tuple[int, dict]]] = {}
        for row in doc.get("points", ()):
            i = self.index.get(row.get("point"))
            if i is not None:
                by_device.setdefault(self.catalog.devices[i], []).append((i, row))
        out = []
        for device in ["", *self.devices]:
            rows = by_device.get(device)
            if not rows:
                continue
            p = self.Payload(timestamp=ts_ms, seq=self._next_seq())
            for i, row in rows:
                value = math.nan if row.get("value") is None else float(row["value"])
                t = row.get("observed_at")
                quality, held = int(row.get("quality", 0)), bool(row.get("maintenance"))
                self.value[i], self.observed[i] = value, t
                self.quality[i], self.held[i] = quality, held
                m = p.metrics.add(name=self.catalog.names[i])
                if t is not None:
                    m.timestamp = int(t)
                _value(m, value)
                set_properties(m, ("quality", UINT32, quality),
                       *((("maintenance", BOOLEAN, True),) if held else ()))
            kind = "NDATA" if device == "" else "DDATA"
            out.append((self.topic(kind, device), p.SerializeToString()))
        return out

    def is_rebirth(self, payload: bytes) -> bool:
        """An NCMD asking for a rebirth: the metric `Node Control/Rebirth` = true."""
        p = self.Payload()
        try:
            p.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError; junk is no request
            return False
        return any(m.name == REBIRTH and m.boolean_value for m in p.metrics)


def _value(m, value: float) -> None:
    if value == value:
        m.double_value = value
    else:
        m.is_null = True
