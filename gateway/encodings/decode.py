"""Reading telemetry back, whatever its encoding: the platform's side of `gateway.encodings`.

`decode(payload)` tells the encoding by the first byte (`{` JSON, 0x78 zlib, else a Sparkplug B
protobuf, whose first field tag is 0x08 or 0x12) and returns the `minewatch/telemetry/1` shape
(`config/schema/telemetry.schema.json`): `kind`, `site`, `gateway`, `ts` or `window_start` /
`window_end` (epoch ms) and `points`, one object per point with `point`, `value`, `quality` and
`observed_at` (values, realtime) or `count`, `samples`, `min`, `max`, `mean`, `quality`,
`quantity`, `unit` (stats). The tests, the benchmarks and a platform's integration read
telemetry through it.
"""

from __future__ import annotations

import json
import struct
import zlib

__all__ = ["decode", "encoded_as", "encoding_of"]


def encoding_of(payload: bytes) -> str:
    """"json" (either JSON schema), "zlib" or "protobuf", by the payload's first byte."""
    first = payload[:1]
    if first == b"{":
        return "json"
    if first == b"\x78":
        return "zlib"
    return "protobuf"


def encoded_as(payload: bytes) -> str:
    """The `encoding` that wrote a telemetry payload: "compact" or "json" (by the schema its
    first bytes name), "zlib" or "protobuf" (by its first byte).

    >>> encoded_as(b'{"schema":"minewatch/telemetry/2","k":"values"}'), encoded_as(b"\\x78\\x9c")
    ('compact', 'zlib')
    """
    kind = encoding_of(payload)
    if kind != "json":
        return kind
    return "compact" if b'"minewatch/telemetry/2"' in payload[:64] else "json"


def decode(payload: bytes) -> dict:
    """One telemetry payload of any encoding, in the `minewatch/telemetry/1` shape."""
    kind = encoding_of(payload)
    if kind == "zlib":
        return decode(zlib.decompress(payload))
    if kind == "protobuf":
        return _sparkplug(payload)
    doc = json.loads(payload)
    if doc.get("schema") == "minewatch/telemetry/1":
        return doc
    if doc.get("schema") != "minewatch/telemetry/2":
        raise ValueError(f"not MineWatch telemetry: schema {doc.get('schema')!r}")
    out = {"schema": "minewatch/telemetry/1", "kind": doc["k"], "site": doc["site"],
           "gateway": doc["gw"]}
    points = []
    if doc["k"] == "stats":
        out["window_start"], out["window_end"] = doc["ws"], doc["we"]
        for group in doc["d"].values():
            for name, (n, samples, lo, hi, mean, q, quantity, unit) in group.items():
                points.append({"point": name, "quantity": quantity, "unit": unit, "count": n,
                               "samples": samples, "min": lo, "max": hi, "mean": mean,
                               "quality": q})
    else:
        out["ts"] = ts = doc["ts"]
        for group in doc["d"]:
            t = None if group["t"] is None else ts + group["t"]
            bad = group.get("q", {})
            for name, value in group["v"].items():
                points.append({"point": name, "value": value, "quality": bad.get(name, 0),
                               "observed_at": t})
    held = set(doc.get("m", ()))
    for row in points:
        if row["point"] in held:
            row["maintenance"] = True
    if "cmd" in doc:
        out["command_id"] = doc["cmd"]
    out["points"] = points
    return out


def _sparkplug(payload: bytes) -> dict:
    from gateway.encodings.sparkplug import UUID, payload_class

    p = payload_class()()
    p.ParseFromString(payload)
    schema, _, kind = p.uuid.partition(";")
    if schema != UUID:
        raise ValueError(f"not MineWatch telemetry: uuid {p.uuid!r}")
    out: dict = {"schema": "minewatch/telemetry/1", "kind": kind}
    points = []
    if kind == "stats":
        out["window_start"] = struct.unpack(">q", p.body)[0]
        out["window_end"] = p.timestamp
        by_point: dict[str, dict] = {}
        for m in p.metrics:
            name, _, field = m.name.rpartition("/")
            row = by_point.setdefault(name, {"point": name, "quality": 0})
            props = _props(m)
            if field in ("count", "samples"):
                row[field] = m.long_value
                row.update(_flagged(props))
            else:
                row[field] = None if m.is_null else m.double_value
        points = list(by_point.values())
    else:
        out["ts"] = p.timestamp
        if p.body:
            out["command_id"] = p.body.decode()
        for m in p.metrics:
            props = _props(m)
            points.append({"point": m.name, "value": None if m.is_null else m.double_value,
                           "quality": props.get("quality", 0),
                           "observed_at": m.timestamp if m.HasField("timestamp") else None,
                           **({"maintenance": True} if props.get("maintenance") else {})})
    out["points"] = points
    return out


def _flagged(props: dict) -> dict:
    """A stats row's properties, the maintenance flag as the JSON says it."""
    out = {k: v for k, v in props.items() if k != "maintenance"}
    if props.get("maintenance"):
        out["maintenance"] = True
    return out


def _props(m) -> dict:
    out = {}
    for key, v in zip(m.properties.keys, m.properties.values, strict=True):
        out[key] = v.string_value if v.HasField("string_value") else v.int_value
    return out
