"""A Sparkplug B host's reading of the wire, written from the protobuf encoding rules and Eclipse
Tahu's `sparkplug_b.proto` field numbers, independent of the gateway's descriptor
(`gateway/encodings/sparkplug.py`): varints, fixed 32/64-bit and length-delimited fields, and
only the Payload, Metric, PropertySet and PropertyValue fields a host test needs. `encode_ncmd`
writes the one command a host sends here (a rebirth request) the same way by hand.
"""

from __future__ import annotations

import struct

__all__ = ["decode_payload", "encode_ncmd"]

# Sparkplug B DataType numbers a host reads here
INT64, UINT32, DOUBLE, BOOLEAN, STRING = 4, 7, 10, 11, 12


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes):
    """(field number, wire type, value) of each field: an int for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire} of field {number} is not read here")
        yield number, wire, value


def _property_value(buf: bytes) -> dict:
    out: dict = {}
    for number, _, v in _fields(buf):
        if number == 1:
            out["type"] = v
        elif number == 2:
            out["is_null"] = bool(v)
        elif number in (3, 4):
            out["value"] = v
        elif number == 6:
            out["value"] = struct.unpack("<d", v)[0]
        elif number == 7:
            out["value"] = bool(v)
        elif number == 8:
            out["value"] = v.decode()
    return out


def _property_set(buf: bytes) -> dict:
    keys, values = [], []
    for number, _, v in _fields(buf):
        if number == 1:
            keys.append(v.decode())
        elif number == 2:
            values.append(_property_value(v))
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} property keys, {len(values)} values")
    return {k: v.get("value") for k, v in zip(keys, values, strict=True)}


def _metric(buf: bytes) -> dict:
    out: dict = {"properties": {}}
    for number, _, v in _fields(buf):
        if number == 1:
            out["name"] = v.decode()
        elif number == 3:
            out["timestamp"] = v
        elif number == 4:
            out["datatype"] = v
        elif number == 7:
            out["is_null"] = bool(v)
        elif number == 9:
            out["properties"] = _property_set(v)
        elif number in (10, 11):
            out["value"] = v
        elif number == 13:
            out["value"] = struct.unpack("<d", v)[0]
        elif number == 14:
            out["value"] = bool(v)
        elif number == 15:
            out["value"] = v.decode()
    if out.get("is_null"):
        out["value"] = None
    return out


def decode_payload(buf: bytes) -> dict:
    """A Sparkplug B Payload: `timestamp`, `seq` (absent in an NDEATH), `metrics` (each with
    `name`, `timestamp`, `datatype`, `value` (None when null) and `properties`)."""
    out: dict = {"metrics": []}
    for number, _, v in _fields(buf):
        if number == 1:
            out["timestamp"] = v
        elif number == 2:
            out["metrics"].append(_metric(v))
        elif number == 3:
            out["seq"] = v
        elif number == 4:
            out["uuid"] = v.decode()
    return out


def _key(number: int, wire: int) -> bytes:
    return _put_varint(number << 3 | wire)


def _put_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _put_varint(len(data)) + data


def encode_ncmd(timestamp_ms: int, rebirth: bool = True) -> bytes:
    """An NCMD payload with the metric `Node Control/Rebirth` (Boolean)."""
    metric = (_bytes_field(1, b"Node Control/Rebirth") + _key(4, 0) + _put_varint(BOOLEAN)
              + _key(14, 0) + _put_varint(int(rebirth)))
    return _key(1, 0) + _put_varint(timestamp_ms) + _bytes_field(2, metric)
