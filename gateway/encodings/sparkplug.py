"""The protobuf telemetry encoding (`encoding = "protobuf"`): a Sparkplug B `Payload`.

The message is Eclipse Tahu's `sparkplug_b.proto` (package `org.eclipse.tahu.protobuf`, Sparkplug
3.0.0): the fields this encoder uses are declared here with Tahu's names and numbers, so any
Sparkplug decoder reads the bytes. Neither Python package that ships those definitions installs
beside MineWatch's pins (pysparkplug 0.6 needs paho-mqtt < 2, tahu 0.1.2 pins protobuf 3.19), so
the descriptor is built here from the same fields and the runtime is the `protobuf` package
(`pip install 'minewatch[protobuf]'`), imported only by a gateway that uses this encoding.

It is Sparkplug's payload, not its topic namespace or session (no NBIRTH, no aliases): it goes
on MineWatch's telemetry topic, every metric named by its point and stamped with its read time
(ms), so each message stands alone. Per metric: `name`, `timestamp`, `datatype` Double (10)
and `double_value` (the value rounded to `digits`, as the compact JSON), or `is_null` when there
is none; a quality other than good as the property `quality` (UInt32, MineWatch's code). The
payload's `timestamp` is the message time; its `uuid` says what it is
(`minewatch/telemetry/2;values`, `...;realtime`, `...;stats`). Statistics send per point the
metrics `<point>/count`, `/samples`, `/min`, `/max`, `/mean` at the window's end, with the
properties `quantity` and `unit` on `/count` and `window_start` on the payload as `body`
(8 bytes, big-endian epoch ms).
"""

from __future__ import annotations

import math
import struct

from gateway.encodings import Catalog, Report, rounded

__all__ = ["UUID", "SparkplugEncoder", "payload_class", "set_properties", "DOUBLE", "UINT32",
           "INT64", "STRING", "BOOLEAN"]

UUID = "minewatch/telemetry/2"
# Sparkplug B DataType (Sparkplug 3.0.0 §6.4.16)
INT64, UINT32, DOUBLE, BOOLEAN, STRING = 4, 7, 10, 11, 12

_FIELDS = {  # message -> [(name, number, type, label, type_name, oneof)], Tahu's numbering
    "Payload": [("timestamp", 1, "uint64", 1, None, None),
                ("metrics", 2, "message", 3, ".org.eclipse.tahu.protobuf.Payload.Metric", None),
                ("seq", 3, "uint64", 1, None, None), ("uuid", 4, "string", 1, None, None),
                ("body", 5, "bytes", 1, None, None)],
    "Metric": [("name", 1, "string", 1, None, None), ("alias", 2, "uint64", 1, None, None),
               ("timestamp", 3, "uint64", 1, None, None),
               ("datatype", 4, "uint32", 1, None, None),
               ("is_historical", 5, "bool", 1, None, None),
               ("is_transient", 6, "bool", 1, None, None), ("is_null", 7, "bool", 1, None, None),
               ("properties", 9, "message", 1, ".org.eclipse.tahu.protobuf.Payload.PropertySet",
                None),
               ("int_value", 10, "uint32", 1, None, 0), ("long_value", 11, "uint64", 1, None, 0),
               ("float_value", 12, "float", 1, None, 0), ("double_value", 13, "double", 1, None, 0),
               ("boolean_value", 14, "bool", 1, None, 0),
               ("string_value", 15, "string", 1, None, 0),
               ("bytes_value", 16, "bytes", 1, None, 0)],
    "PropertySet": [("keys", 1, "string", 3, None, None),
                    ("values", 2, "message", 3,
                     ".org.eclipse.tahu.protobuf.Payload.PropertyValue", None)],
    "PropertyValue": [("type", 1, "uint32", 1, None, None), ("is_null", 2, "bool", 1, None, None),
                      ("int_value", 3, "uint32", 1, None, 0),
                      ("long_value", 4, "uint64", 1, None, 0),
                      ("float_value", 5, "float", 1, None, 0),
                      ("double_value", 6, "double", 1, None, 0),
                      ("boolean_value", 7, "bool", 1, None, 0),
                      ("string_value", 8, "string", 1, None, 0)],
}
_CLASS = None


def payload_class():
    """The `org.eclipse.tahu.protobuf.Payload` message class (built once per process)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:  # pragma: no cover - the config loader says so first
        raise RuntimeError("encoding = \"protobuf\" needs the protobuf package: "
                           "pip install 'minewatch[protobuf]'") from None
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="minewatch_sparkplug_b.proto",
                                            package="org.eclipse.tahu.protobuf", syntax="proto2")
    payload = fd.message_type.add(name="Payload")
    for field in _FIELDS["Payload"]:
        _add(payload, field, F)
    for name in ("Metric", "PropertySet", "PropertyValue"):
        msg = payload.nested_type.add(name=name)
        if any(f[5] is not None for f in _FIELDS[name]):
            msg.oneof_decl.add(name="value")
        for field in _FIELDS[name]:
            _add(msg, field, F)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    _CLASS = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload"))
    return _CLASS


def _add(msg, field, F) -> None:
    name, number, kind, label, type_name, oneof = field
    f = msg.field.add(name=name, number=number, label=label,
                      type=getattr(F, "TYPE_" + kind.upper()))
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


class SparkplugEncoder:
    def __init__(self, catalog: Catalog, digits: int):
        self.catalog = catalog
        self.digits = digits
        self.Payload = payload_class()

    def __call__(self, r: Report) -> bytes:
        p = self.Payload(timestamp=int(round(r.ts * 1000)), uuid=f"{UUID};{r.kind}")
        names = self.catalog.names
        held = set(r.in_maintenance())
        if r.kind == "stats":
            self._stats(p, r, held)
            return p.SerializeToString()
        if r.command_id is not None:  # a measure command's values: its id in the body
            p.body = r.command_id.encode()
        values = rounded(r.value, self.digits).tolist()
        stamps, quality = r.observed.tolist(), r.quality.tolist()
        for k, i in enumerate(r.points.tolist()):
            m = p.metrics.add(name=names[i], datatype=DOUBLE)
            if stamps[k] == stamps[k]:
                m.timestamp = int(round(stamps[k] * 1000))
            v = values[k]
            if v == v:
                m.double_value = v
            else:
                m.is_null = True
            if quality[k]:
                set_properties(m, ("quality", UINT32, quality[k]))
            if k in held:
                set_properties(m, ("maintenance", UINT32, 1))
        return p.SerializeToString()

    def _stats(self, p, r: Report, held: set[int]) -> None:
        c = self.catalog
        p.body = struct.pack(">q", int(round(r.window_start * 1000)))
        lo, hi, mean = (rounded(a, self.digits).tolist() for a in (r.vmin, r.vmax, r.mean))
        for k, i in enumerate(r.points.tolist()):
            n = int(r.count[k])
            m = p.metrics.add(name=f"{c.names[i]}/count", datatype=INT64, long_value=n)
            set_properties(m, ("quantity", STRING, c.quantities[i]), ("unit", STRING, c.units[i]),
                   *((("quality", UINT32, int(r.quality[k])),) if r.quality[k] else ()),
                   *((("maintenance", UINT32, 1),) if k in held else ()))
            p.metrics.add(name=f"{c.names[i]}/samples", datatype=INT64,
                          long_value=int(r.samples[k]))
            for suffix, v in (("min", lo[k]), ("max", hi[k]), ("mean", mean[k])):
                m = p.metrics.add(name=f"{c.names[i]}/{suffix}", datatype=DOUBLE)
                if n and math.isfinite(v):
                    m.double_value = v
                else:
                    m.is_null = True


def set_properties(metric, *items: tuple[str, int, object]) -> None:
    """Sparkplug metric properties: (key, datatype, value)."""
    for key, datatype, value in items:
        metric.properties.keys.append(key)
        pv = metric.properties.values.add(type=datatype)
        if datatype == STRING:
            pv.string_value = value
        elif datatype == BOOLEAN:
            pv.boolean_value = value
        else:
            pv.int_value = value
