"""Engineering values -> register words, exactly as the simulated firmware holds them.

The inverse of the gateway's decoding, written independently of it (the simulator may import
only the profile loader from `gateway/`), so the round-trip tests catch a disagreement between
the two instead of inheriting a shared bug. Word orders as in `gateway.profiles`: ABCD as sent,
CDAB words swapped (64-bit: all four reversed), BADC bytes swapped in each word, DCBA both.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

from gateway.profiles import Register

__all__ = ["encode_value", "encode_bits", "encode_string"]

_FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f",
            "int64": "q", "uint64": "Q", "float64": "d"}
_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
           "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
           "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1)}
_BIT_TABLES = ("coil", "discrete")


def _swap_bytes(word: int) -> int:
    return ((word >> 8) | (word << 8)) & 0xFFFF


def _place(words: list[int], order: str) -> list[int]:
    """Words in ABCD (most significant first) -> the register's word and byte order."""
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    if order in ("BADC", "DCBA"):
        words = [_swap_bytes(w) for w in words]
    return words


def encode_value(value: float, register: Register, decimals: int = 0) -> list[int]:
    """The register words holding engineering `value`, in the register's type and word order.

    Integer types hold raw = round((value - offset) / scale / 10**-decimals), where `decimals`
    is what the device's decimal-places register says; a raw value beyond the type's range is
    clamped to it (the firmware saturates rather than wraps), a negative one in an unsigned type
    becomes 0. Float types hold (value - offset) / scale / 10**-decimals as an IEEE-754 value
    (NaN and infinities pass through). A bit (register bit field, coil or discrete input) is set
    when `value` is non-zero: a coil/discrete gives [0|1], a bit field the word with only its bit
    set, so bit fields sharing a register must be merged with `encode_bits`.
    Raises ValueError for strings (see `encode_string`) and for NaN in an integer type.
    """
    if register.type == "bit":
        return [_bit_word(register, bool(value))]
    if register.type == "string":
        raise ValueError(f"register {register.name!r} is a string; use encode_string")
    if register.type not in _FORMATS:
        raise ValueError(f"register {register.name!r}: cannot encode type {register.type!r}")
    raw = (value - register.offset) / register.scale * 10.0**decimals
    fmt = _FORMATS[register.type]
    if fmt in "fd":
        data = struct.pack(">" + fmt, raw)
    else:
        if math.isnan(raw):
            raise ValueError(f"register {register.name!r} ({register.type}) cannot hold NaN")
        lo, hi = _RANGES[register.type]
        clamped = lo if raw == -math.inf else hi if raw == math.inf else round(raw)
        data = struct.pack(">" + fmt, min(hi, max(lo, clamped)))
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    return _place(words, register.word_order)


def _bit_word(register: Register, on: bool) -> int:
    if register.table in _BIT_TABLES:
        return int(on)
    if register.bit is None or not 0 <= register.bit <= 15:
        raise ValueError(f"bit field {register.name!r} needs bit = 0..15, got {register.bit!r}")
    word = (1 << register.bit) if on else 0
    # a byte-swapping device swaps its status words too; `bit` counts in the value, not the wire
    return _swap_bytes(word) if register.word_order in ("BADC", "DCBA") else word


def encode_bits(fields: Iterable[tuple[Register, float]]) -> dict[int, int]:
    """Wire address -> word (or 0/1 for coils and discrete inputs) for a set of bit fields.

    Bit fields that share a register are OR-ed into one word, each in its own byte order (a
    byte swap distributes over OR, so mixed orders still land right). Non-bit registers are an
    error: encode them with `encode_value`.
    """
    image: dict[int, int] = {}
    for register, value in fields:
        if register.type != "bit":
            raise ValueError(f"register {register.name!r} is {register.type}, not a bit")
        word = _bit_word(register, bool(value))
        image[register.wire_address] = image.get(register.wire_address, 0) | word
    return image


def encode_string(text: str, register: Register) -> list[int]:
    """ASCII `text` in the register's `count` words, two characters a word, NUL-padded (cut to
    fit), high byte first unless the register's order swaps bytes (BADC, DCBA)."""
    data = text.encode("ascii")[: 2 * register.count].ljust(2 * register.count, b"\0")
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if register.word_order in ("BADC", "DCBA"):
        words = [_swap_bytes(w) for w in words]
    return words
