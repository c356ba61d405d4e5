"""Vectorised decoding of Modbus replies with numpy.

A `DeviceDecoder` is compiled once from a device's read plan: for every register it knows the
reply it sits in, its word offset, its type and word order, scale and offset. A poll's replies are
concatenated into one word vector and each (type, order) group is decoded with one gather, one
swap and one `view` as a big-endian dtype, never a Python loop per value. Word orders: ABCD (as
sent), CDAB (words swapped), BADC (bytes swapped in each word), DCBA (both); 64-bit values extend
the same two swaps. A "decimal places" register scales its value by 10^-decimals, wherever in the
poll it was read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.modbus.planner import ReadRequest

__all__ = ["DeviceDecoder", "decode_words", "decode_string", "decode_all_orders"]

_DTYPES = {"int16": ">i2", "uint16": ">u2", "int32": ">i4", "uint32": ">u4", "float32": ">f4",
           "int64": ">i8", "uint64": ">u8", "float64": ">f8"}


def _arrange(words: np.ndarray, order: str) -> np.ndarray:
    """Rows of raw words (k, n) put into ABCD... order, as uint16 in network byte order."""
    w = words
    if order in ("CDAB", "DCBA"):
        w = w[:, ::-1]
    if order in ("BADC", "DCBA"):
        w = ((w >> 8) | (w << 8)) & 0xFFFF
    return np.ascontiguousarray(w.astype(">u2"))


def decode_words(words: np.ndarray, dtype: str, order: str = "ABCD") -> np.ndarray:
    """Decode rows of register words (k, n) of one type and order into float64[k]."""
    words = np.asarray(words, dtype=np.uint16).reshape(len(words), -1)
    raw = _arrange(words, order).view(_DTYPES[dtype]).reshape(-1)
    return raw.astype(np.float64)


def decode_string(words: Sequence[int], order: str = "ABCD") -> str:
    w = _arrange(np.asarray(words, dtype=np.uint16).reshape(1, -1),
                 "BADC" if order in ("BADC", "DCBA") else "ABCD")
    return w.tobytes().split(b"\0", 1)[0].decode("ascii", "replace").strip()


def decode_all_orders(words: Sequence[int]) -> dict[tuple[str, str], float]:
    """Every numeric type and word order that fits the words, side by side (commissioning)."""
    w = np.asarray(words, dtype=np.uint16)
    out: dict[tuple[str, str], float] = {}
    for dtype, code in _DTYPES.items():
        n = np.dtype(code).itemsize // 2
        if len(w) < n:
            continue
        for order in (("ABCD", "BADC") if n == 1 else ("ABCD", "CDAB", "BADC", "DCBA")):
            out[(dtype, order)] = float(decode_words(w[:n].reshape(1, n), dtype, order)[0])
    return out


class DeviceDecoder:
    """Decodes all replies of one device's poll into a vector of engineering values."""

    def __init__(self, requests: Sequence[ReadRequest]):
        self.requests = tuple(requests)
        regs, starts = [], []
        base = 0
        for q in self.requests:
            for r, off in q.fields:
                regs.append(r)
                starts.append(base + off)
            base += q.count
        self.registers = tuple(regs)
        self.register_index = {r.name: i for i, r in enumerate(regs)}
        self.total_words = base
        n = len(regs)
        self.scale = np.array([r.scale for r in regs], dtype=np.float64)
        self.offset = np.array([r.offset for r in regs], dtype=np.float64)
        self.decimals = np.array([self.register_index.get(r.decimals_register, -1)
                                  if r.decimals_register else -1 for r in regs], dtype=np.int64)
        self._groups: list[tuple[np.ndarray, np.ndarray, str, str]] = []
        keyed: dict[tuple[str, str], list[int]] = {}
        self._bits: list[tuple[int, int, int]] = []  # (register index, word position, bit or -1)
        for i, r in enumerate(regs):
            if r.type == "bit":
                self._bits.append((i, starts[i], -1 if r.table in ("coil", "discrete") else r.bit))
            elif r.type == "string":
                continue
            else:
                order = r.word_order if r.count > 1 else ("BADC" if r.word_order in
                                                          ("BADC", "DCBA") else "ABCD")
                keyed.setdefault((r.type, order), []).append(i)
        for (dtype, order), members in keyed.items():
            width = regs[members[0]].count
            cols = np.array([starts[i] for i in members])[:, None] + np.arange(width)[None, :]
            self._groups.append((np.array(members, dtype=np.int64), cols, dtype, order))
        self._strings = [i for i, r in enumerate(regs) if r.type == "string"]
        self._n = n

    def decode(self, replies: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values float64[n], ok bool[n]) in `registers` order from the plan's replies."""
        words = np.concatenate([np.asarray(r, dtype=np.uint16) for r in replies]) \
            if replies else np.zeros(0, np.uint16)
        raw = np.full(self._n, np.nan)
        for members, cols, dtype, order in self._groups:
            raw[members] = decode_words(words[cols], dtype, order)
        for i, pos, bit in self._bits:
            raw[i] = float(words[pos] & 1) if bit < 0 else float((int(words[pos]) >> bit) & 1)
        ok = np.isfinite(raw)
        if self._strings:
            ok[self._strings] = True
        values = raw * self.scale
        has_dec = self.decimals >= 0
        if has_dec.any():
            dec = raw[self.decimals[has_dec]]
            values[has_dec] = values[has_dec] * np.power(10.0, -dec)
            ok[has_dec] &= np.isfinite(dec)
        values += self.offset
        return values, ok
