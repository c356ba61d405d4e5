"""A value -> its register words in a numeric type and word order: the inverse of
`gateway.modbus.decode.decode_words`, for the commissioning writes of `minewatch device write`
(the daemon never writes).

Word orders as in the decoder (letters are the bytes of the value, most significant first):
ABCD as sent, CDAB words swapped (64-bit: all four words reversed), BADC bytes swapped inside
each word, DCBA both. A one-word value has no word order, but BADC/DCBA still swap its bytes.

>>> encode_words(1255.125, "float32")
[17564, 58368]
>>> encode_words(1255.125, "float32", "CDAB")
[58368, 17564]
>>> [hex(w) for w in encode_value("-2", "int16", "BADC")]
['0xfeff']
>>> encode_value("0xBEEF", "uint16")
[48879]
"""

from __future__ import annotations

import struct

from gateway.profiles import WORD_ORDERS

__all__ = ["ENCODABLE_TYPES", "encode_value", "encode_words"]

_PACK = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f",
         "int64": ">q", "uint64": ">Q", "float64": ">d"}
ENCODABLE_TYPES: tuple[str, ...] = tuple(_PACK)


def encode_words(number: int | float, dtype: str, order: str = "ABCD") -> list[int]:
    """The register words of `number` as `dtype` in word order `order`; raises ValueError when
    it does not fit the type (an integer out of range, a fraction for an integer type)."""
    if dtype not in _PACK:
        raise ValueError(f"type must be one of {ENCODABLE_TYPES}, got {dtype!r}")
    if order not in WORD_ORDERS:
        raise ValueError(f"word order must be one of {WORD_ORDERS}, got {order!r}")
    try:
        data = struct.pack(_PACK[dtype], number)
    except struct.error as exc:
        raise ValueError(str(exc)) from None
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if order in ("CDAB", "DCBA") and len(words) > 1:
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [((w >> 8) | (w << 8)) & 0xFFFF for w in words]
    return words


def encode_value(value: str, dtype: str, order: str = "ABCD") -> list[int]:
    """The register words of `value` as typed by a person (a decimal number, or 0x... for an
    integer type) in `dtype` and `order`; raises ValueError when it is not a number of that
    type or does not fit it."""
    number: int | float = float(value) if dtype.startswith("float") else int(value, 0)
    return encode_words(number, dtype, order)
