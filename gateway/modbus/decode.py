"""Vectorised decoding of Modbus replies into engineering values, with numpy.

Each `ReadRequest` of a device's plan is compiled once into a `DecodeTable`: per field its word
offset in the reply, type code, word/byte swap flags, scale, offset, bit index and the index of
its decimal-places field. Decoding a reply then costs one fancy-index gather, one swap and one
`view` as a big-endian dtype per (type, word order) group of the block, never a Python loop per
value. `DeviceDecoder` holds the tables of a whole plan and decodes all replies of one poll, so a
"decimal places" register scales its value wherever in the poll it was read.

Word orders (letters are the bytes of the value, most significant first): ABCD as sent, CDAB
words swapped, BADC bytes swapped inside each word, DCBA both. 64-bit values generalise the same
two swaps (CDAB reverses all four words). A one-word value has no word order, but BADC/DCBA still
swap its two bytes; a bit field of a register is taken from the word after that byte swap, so
`bit` counts from the least significant bit of the value as the manual prints it.

value = raw * scale + offset, or raw * scale * 10**-decimals + offset when the register names a
`decimals_register` (decimals = that register's raw value, valid 0..9). `ok` is False for a NaN
or infinite float, a missing or invalid decimals value, words missing from a short reply, and for
strings, which are text and go through `decode_string` instead of the numeric path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from gateway.modbus.planner import BIT_TABLES, ReadRequest
from gateway.profiles import WORD_ORDERS, Register

__all__ = [
    "NUMERIC_TYPES",
    "TYPE_CODES",
    "MAX_DECIMALS",
    "DecodeTable",
    "DeviceDecoder",
    "compile_plan",
    "decode_raw",
    "decode",
    "decode_device",
    "decode_words",
    "decode_string",
    "decode_all_orders",
]

# big-endian dtypes: after the swaps the words are in ABCD order, i.e. network byte order
_DTYPES: dict[str, str] = {
    "int16": ">i2", "uint16": ">u2", "int32": ">i4", "uint32": ">u4", "float32": ">f4",
    "int64": ">i8", "uint64": ">u8", "float64": ">f8",
}
NUMERIC_TYPES: tuple[str, ...] = tuple(_DTYPES)
TYPE_CODES: tuple[str, ...] = (*NUMERIC_TYPES, "bit", "string")  # DecodeTable.type_code indexes this
_WIDTH = {t: np.dtype(code).itemsize // 2 for t, code in _DTYPES.items()}
_BIT = TYPE_CODES.index("bit")
_STRING = TYPE_CODES.index("string")
# "decimal places" registers hold 0..3 on the devices we know; anything past 9 is a bad reading,
# not a divisor of 10**65535 to apply silently
MAX_DECIMALS = 9
_NO_DECIMALS = -1  # decimals_field: the register has no decimals register
_ELSEWHERE = -2  # decimals_field: its decimals register is in another block of the poll


def _swaps(order: str, width: int) -> tuple[bool, bool]:
    """(word swap, byte swap) of a word order for a value `width` words wide."""
    if order not in WORD_ORDERS:
        raise ValueError(f"word order must be one of {WORD_ORDERS}, got {order!r}")
    return order in ("CDAB", "DCBA") and width > 1, order in ("BADC", "DCBA")


def _to_abcd(block: np.ndarray, word_swap: bool, byte_swap: bool) -> np.ndarray:
    """Rows of reply words (m, n) rearranged into ABCD order, stored big-endian, contiguous."""
    if word_swap:
        block = block[:, ::-1]
    if byte_swap:
        block = (block >> 8) | (block << 8)  # uint16 arithmetic: the high byte falls off
    return np.ascontiguousarray(block, dtype=">u2")


class _Gather(NamedTuple):
    """One (type, word order) group of a block: decoded with one gather and one view."""

    members: np.ndarray  # int64[m]: field indices
    cols: np.ndarray  # int64[m, n]: word offsets of each member's n words
    dtype: str
    word_swap: bool
    byte_swap: bool
    is_float: bool


@dataclass(frozen=True, eq=False)
class DecodeTable:
    """The precompiled decoding of one ReadRequest's reply (k fields, in `request.fields` order).

    Build with `DecodeTable.from_request`; the arrays are read-only and describe, per field:
    `word_offset` in the reply, `type_code` (index into TYPE_CODES), `word_swap`/`byte_swap`,
    `scale`, `offset`, `bit` (-1 unless a bit field of a register) and `decimals_field` (index of
    the decimals field in this table, -1 none, -2 in another block: see `decimals_name`).
    """

    request: ReadRequest
    registers: tuple[Register, ...]
    word_offset: np.ndarray
    type_code: np.ndarray
    word_swap: np.ndarray
    byte_swap: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    bit: np.ndarray
    decimals_field: np.ndarray
    decimals_name: tuple[str | None, ...]
    bit_table: bool  # a coil/discrete reply: one bool per bit, not words
    _groups: tuple[_Gather, ...]
    _bits: np.ndarray  # field indices of bit fields (of registers or of a bit table)

    @classmethod
    def from_request(cls, request: ReadRequest) -> DecodeTable:
        """Compile the reply layout of `request`; raises ValueError on a field that cannot be."""
        regs = tuple(r for r, _ in request.fields)
        k = len(regs)
        bit_table = request.table in BIT_TABLES
        word_offset = np.array([off for _, off in request.fields], dtype=np.int64).reshape(k)
        type_code = np.empty(k, dtype=np.int8)
        word_swap = np.zeros(k, dtype=bool)
        byte_swap = np.zeros(k, dtype=bool)
        bit = np.full(k, -1, dtype=np.int8)
        local = {r.name: i for i, r in enumerate(regs)}
        decimals_field = np.full(k, _NO_DECIMALS, dtype=np.int64)
        keyed: dict[tuple[str, bool, bool], list[int]] = {}
        for i, (r, off) in enumerate(request.fields):
            if r.table != request.table:
                raise ValueError(f"register {r.name!r} is in table {r.table!r}, but the request "
                                 f"reads {request.table!r}")
            if off < 0 or off + r.count > request.count:
                raise ValueError(f"register {r.name!r} (offset {off}, {r.count} words) lies "
                                 f"outside the request {request.address}+{request.count}")
            if r.type not in TYPE_CODES:
                raise ValueError(f"register {r.name!r}: unknown type {r.type!r}")
            type_code[i] = TYPE_CODES.index(r.type)
            word_swap[i], byte_swap[i] = _swaps(r.word_order, max(r.count, 1))
            if bit_table and r.type != "bit":
                raise ValueError(f"register {r.name!r} in {request.table} table must be a bit")
            if r.type == "bit" and not bit_table:
                if r.bit is None or not 0 <= r.bit <= 15:
                    raise ValueError(f"bit field {r.name!r} needs bit = 0..15, got {r.bit!r}")
                bit[i] = r.bit
            if r.decimals_register:
                decimals_field[i] = local.get(r.decimals_register, _ELSEWHERE)
            if r.type in _DTYPES:
                keyed.setdefault((r.type, bool(word_swap[i]), bool(byte_swap[i])), []).append(i)
        groups = []
        for (dtype, wswap, bswap), members in keyed.items():
            m = np.array(members, dtype=np.int64)
            cols = word_offset[m][:, None] + np.arange(_WIDTH[dtype], dtype=np.int64)[None, :]
            groups.append(_Gather(m, cols, _DTYPES[dtype], wswap, bswap, dtype.startswith("float")))
        arrays = dict(
            word_offset=word_offset, type_code=type_code, word_swap=word_swap,
            byte_swap=byte_swap, scale=np.array([r.scale for r in regs], dtype=np.float64),
            offset=np.array([r.offset for r in regs], dtype=np.float64), bit=bit,
            decimals_field=decimals_field,
        )
        for a in arrays.values():
            a.flags.writeable = False  # shared by every poll of the device
        return cls(
            request=request, registers=regs, **arrays,
            decimals_name=tuple(r.decimals_register for r in regs), bit_table=bit_table,
            _groups=tuple(groups), _bits=np.flatnonzero(type_code == _BIT),
        )

    def __len__(self) -> int:
        return len(self.registers)

    def __repr__(self) -> str:
        q = self.request
        return (f"DecodeTable(FC{q.function_code} {q.table} {q.address}+{q.count}: "
                f"{', '.join(r.name for r in self.registers)})")


def compile_plan(requests: Sequence[ReadRequest]) -> list[DecodeTable]:
    """One DecodeTable per request of a device's plan, in plan order."""
    return [DecodeTable.from_request(q) for q in requests]


def decode_raw(table: DecodeTable, words: np.ndarray | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(raw float64[k], ok bool[k]): each field's value as the device holds it, before scaling.

    `words` is the reply: uint16 registers, or one bool/0-1 per bit for coil/discrete tables.
    A field whose words are missing from a short reply is NaN and not ok.
    """
    k = len(table.registers)
    raw = np.full(k, np.nan)
    ok = np.zeros(k, dtype=bool)
    if table.bit_table:
        bits = np.asarray(words).reshape(-1) != 0
        present = table.word_offset < len(bits)
        idx = table.word_offset[present]
        raw[present] = bits[idx]
        ok[present] = True
        return raw, ok
    w = np.asarray(words, dtype=np.uint16).reshape(-1)
    n = len(w)
    short = n < table.request.count  # rare: the fast path gathers without bounds masks
    for g in table._groups:
        members, cols = g.members, g.cols
        if short:
            inside = cols[:, -1] < n
            members, cols = members[inside], cols[inside]
        block = _to_abcd(w[cols], g.word_swap, g.byte_swap)
        values = block.view(g.dtype)[:, 0].astype(np.float64)
        raw[members] = values
        ok[members] = np.isfinite(values) if g.is_float else True
    if len(table._bits):
        members = table._bits
        offs = table.word_offset[members]
        if short:
            inside = offs < n
            members, offs = members[inside], offs[inside]
        word = w[offs]
        word = np.where(table.byte_swap[members], (word >> 8) | (word << 8), word)
        raw[members] = (word >> table.bit[members].astype(np.uint16)) & 1
        ok[members] = True
    return raw, ok


def _engineering(raw: np.ndarray, ok: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                 has_decimals: np.ndarray, decimals: np.ndarray, decimals_ok: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """raw * scale [* 10**-decimals] + offset; a value that is not ok comes out NaN."""
    values = raw * scale
    ok = ok.copy()
    if has_decimals.any():
        d = decimals[has_decimals]
        good = decimals_ok[has_decimals] & (d >= 0) & (d <= MAX_DECIMALS) & (d == np.round(d))
        values[has_decimals] *= np.where(good, 10.0 ** -np.where(good, d, 0.0), np.nan)
        ok[has_decimals] &= good
    values += offset
    values[~ok] = np.nan
    return values, ok


def decode(table: DecodeTable, words: np.ndarray | Sequence[int],
           decimals: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values float64[k], ok bool[k]) in engineering units for one reply on its own.

    A decimals register in the same block is resolved here; one read in another block is taken
    by name from `decimals` (its raw value), else the field is not ok. `DeviceDecoder` resolves
    them across a whole poll without the mapping.
    """
    raw, ok = decode_raw(table, words)
    k = len(raw)
    dec = np.full(k, np.nan)
    dec_ok = np.zeros(k, dtype=bool)
    local = table.decimals_field >= 0
    dec[local] = raw[table.decimals_field[local]]
    dec_ok[local] = ok[table.decimals_field[local]]
    # fields whose decimals live in another block: few (usually none), looked up by name
    for i in np.flatnonzero(table.decimals_field == _ELSEWHERE):
        value = (decimals or {}).get(table.decimals_name[i])
        if value is not None:
            dec[i], dec_ok[i] = value, bool(np.isfinite(value))
    return _engineering(raw, ok, table.scale, table.offset, table.decimals_field != _NO_DECIMALS,
                        dec, dec_ok)


class DeviceDecoder:
    """Decodes all replies of one device's poll into one vector of engineering values.

    Built once from the plan (ReadRequests or DecodeTables); `registers` lists the fields of
    every block in plan order and `register_index` maps a register name to its position in the
    vectors `decode` returns. Decimals registers are resolved across blocks: the raw values of
    all blocks are laid side by side, and `decimals_index` points each field at its decimals
    field in that vector (-1 none, -2 not in the plan: the field is never ok).
    """

    def __init__(self, plan: Sequence[ReadRequest | DecodeTable]):
        self.tables: tuple[DecodeTable, ...] = tuple(
            t if isinstance(t, DecodeTable) else DecodeTable.from_request(t) for t in plan)
        self.requests: tuple[ReadRequest, ...] = tuple(t.request for t in self.tables)
        self.registers: tuple[Register, ...] = tuple(r for t in self.tables for r in t.registers)
        self.register_index: dict[str, int] = {}
        for i, r in enumerate(self.registers):
            self.register_index.setdefault(r.name, i)
        self._bounds = np.cumsum([0] + [len(t) for t in self.tables]).tolist()
        n = len(self.registers)
        self.scale = np.concatenate([t.scale for t in self.tables]) if n else np.zeros(0)
        self.offset = np.concatenate([t.offset for t in self.tables]) if n else np.zeros(0)
        self.decimals_index = np.array(
            [self.register_index.get(r.decimals_register, _ELSEWHERE) if r.decimals_register
             else _NO_DECIMALS for r in self.registers], dtype=np.int64).reshape(n)
        self._has_decimals = self.decimals_index != _NO_DECIMALS
        self._resolved = self.decimals_index >= 0

    def __len__(self) -> int:
        return len(self.registers)

    def decode_raw(self, replies: Sequence[np.ndarray | Sequence[int]]
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(raw float64[n], ok bool[n]) of every field of the poll, before scaling."""
        if len(replies) != len(self.tables):
            raise ValueError(f"{len(replies)} replies for a plan of {len(self.tables)} requests")
        n = len(self.registers)
        raw = np.empty(n)
        ok = np.empty(n, dtype=bool)
        for t, a, b, words in zip(self.tables, self._bounds[:-1], self._bounds[1:], replies,
                                  strict=True):
            raw[a:b], ok[a:b] = decode_raw(t, words)
        return raw, ok

    def decode(self, replies: Sequence[np.ndarray | Sequence[int]]
               ) -> tuple[np.ndarray, np.ndarray]:
        """(values float64[n], ok bool[n]) in `registers` order from the plan's replies."""
        raw, ok = self.decode_raw(replies)
        dec = np.full(len(raw), np.nan)
        dec_ok = np.zeros(len(raw), dtype=bool)
        src = self.decimals_index[self._resolved]
        dec[self._resolved] = raw[src]
        dec_ok[self._resolved] = ok[src]
        return _engineering(raw, ok, self.scale, self.offset, self._has_decimals, dec, dec_ok)


def decode_device(plan: DeviceDecoder | Sequence[ReadRequest | DecodeTable],
                  replies: Sequence[np.ndarray | Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Decode one poll of a device: (values, ok) over every field of every block, plan order.

    Pass a DeviceDecoder to reuse its compiled index (what a poller does every period); a list
    of tables or requests compiles one on the spot.
    """
    decoder = plan if isinstance(plan, DeviceDecoder) else DeviceDecoder(plan)
    return decoder.decode(replies)


def decode_words(words: np.ndarray | Sequence[Sequence[int]], dtype: str, order: str = "ABCD"
                 ) -> np.ndarray:
    """Rows of register words (k, n) of one numeric type and word order -> raw float64[k]."""
    if dtype not in _DTYPES:
        raise ValueError(f"type must be one of {NUMERIC_TYPES}, got {dtype!r}")
    width = _WIDTH[dtype]
    block = np.asarray(words, dtype=np.uint16).reshape(-1, width)
    return _to_abcd(block, *_swaps(order, width)).view(_DTYPES[dtype])[:, 0].astype(np.float64)


def decode_string(words: Sequence[int] | np.ndarray, order: str = "ABCD") -> str:
    """Register words holding ASCII text, two characters per word, high byte first (ABCD/CDAB)
    or low byte first (BADC/DCBA); leading/trailing NULs and spaces are trimmed and the text ends
    at the first NUL after that. Non-ASCII bytes come out as U+FFFD."""
    _, byte_swap = _swaps(order, 1)  # text is never word-swapped, only its bytes may be
    block = np.asarray(words, dtype=np.uint16).reshape(1, -1)
    data = _to_abcd(block, False, byte_swap).tobytes().strip(b"\0 ")
    return data.split(b"\0", 1)[0].decode("ascii", "replace").rstrip()


def decode_all_orders(words: Sequence[int] | np.ndarray) -> dict[tuple[str, str], float]:
    """Raw value of the leading words in every numeric type and word order that fits them.

    For commissioning (`minewatch device read --order all`): the right (type, order) is the one
    that gives a plausible reading. One-word types list ABCD and BADC only, since CDAB and DCBA
    equal them on a single word; types wider than `words` are left out.
    """
    w = np.asarray(words, dtype=np.uint16).reshape(-1)
    out: dict[tuple[str, str], float] = {}
    for dtype in NUMERIC_TYPES:
        width = _WIDTH[dtype]
        if len(w) < width:
            continue
        for order in (("ABCD", "BADC") if width == 1 else WORD_ORDERS):
            out[(dtype, order)] = float(decode_words(w[:width].reshape(1, width), dtype, order)[0])
    return out
