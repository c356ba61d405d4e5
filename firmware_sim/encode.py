"""Engineering values -> register words, as the simulated firmware holds them.

The inverse of the gateway's decoding, written independently (the simulator may import only the
profile loader), so a disagreement between the two shows up in tests. Integer types round to the
nearest raw value and clamp to the type's range, as firmware saturates rather than wraps.
"""

from __future__ import annotations

import struct

from gateway.profiles import Register

__all__ = ["encode_value"]

_FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f",
            "int64": "q", "uint64": "Q", "float64": "d"}
_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
           "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
           "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1)}


def encode_value(value: float, register: Register, decimals: int = 0) -> list[int]:
    """Register words for `value` in the register's type, scale, offset and word order."""
    if register.type == "bit":
        return [1 if value else 0]
    if register.type == "string":
        raise ValueError(f"register {register.name!r} is a string; encode it as text")
    raw = (value - register.offset) / register.scale * 10.0**decimals
    fmt = _FORMATS[register.type]
    if fmt not in "fd":
        lo, hi = _RANGES[register.type]
        raw = min(hi, max(lo, int(round(raw))))
    data = struct.pack(">" + fmt, raw)
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    order = register.word_order
    if order in ("CDAB", "DCBA") and len(words) > 1:
        words = words[::-1]
    if order in ("BADC", "DCBA"):
        words = [((w >> 8) | (w << 8)) & 0xFFFF for w in words]
    return words
