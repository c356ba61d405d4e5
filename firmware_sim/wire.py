"""Modbus wire format for the simulator's slave: CRC-16, RTU request lengths, PDU encoding.

Pure functions over bytes, no I/O: `firmware_sim.slave` uses them to cut requests out of a byte
stream (RTU on a serial line or over TCP, MBAP over TCP) and to build the replies, and the
tests use them to craft raw frames. Everything here is on the hot path of a large simulated
site, so it works on `bytes`/`bytearray` directly and builds no per-request objects.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum

__all__ = [
    "MBAP",
    "MAX_RTU_ADU",
    "ExceptionCode",
    "add_crc",
    "crc16",
    "crc_ok",
    "exception_pdu",
    "find_crc_frame",
    "garble",
    "pack_bits",
    "rtu_request_size",
    "unpack_bits",
]

# MBAP header of Modbus TCP: transaction id, protocol id (0), length of what follows, unit id.
MBAP = struct.Struct(">HHHB")

# Largest RTU frame the serial-line spec allows (address + PDU of 253 bytes + CRC).
MAX_RTU_ADU = 256


class ExceptionCode(IntEnum):
    """Modbus exception codes a slave answers with (function code | 0x80, code)."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SLAVE_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SLAVE_DEVICE_BUSY = 0x06
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_FAILED = 0x0B


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def crc16(data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None) -> int:
    """CRC-16/MODBUS (reflected poly 0xA001, init 0xFFFF) of `data[start:end]`.

    The frame carries it low byte first: ``crc.to_bytes(2, "little")``.
    """
    crc = 0xFFFF
    table = _CRC_TABLE
    for i in range(start, len(data) if end is None else end):
        crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xFF]
    return crc


def add_crc(frame: bytes) -> bytes:
    """`frame` with its CRC appended (low byte first), ready for the line."""
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(data: bytes | bytearray, start: int = 0, end: int | None = None) -> bool:
    """True when the last two bytes of `data[start:end]` are the CRC of the bytes before them."""
    if end is None:
        end = len(data)
    if end - start < 4:
        return False
    return crc16(data, start, end - 2) == data[end - 2] | (data[end - 1] << 8)


# Request length (address + PDU, without CRC) by function code, for the functions whose
# request has a fixed size. Functions we do not serve are listed too, so that their frames
# are cut out whole and answered with "illegal function" instead of being taken for noise.
_FIXED_REQUEST = {
    1: 6, 2: 6, 3: 6, 4: 6, 5: 6, 6: 6,
    7: 2, 8: 6, 11: 2, 12: 2, 17: 2, 22: 8, 24: 4, 43: 5,
}
# Requests that carry a byte count: function code -> (offset of the count, bytes before the data).
_COUNTED_REQUEST = {15: (6, 7), 16: (6, 7), 20: (2, 3), 21: (2, 3), 23: (10, 11)}


def find_crc_frame(buf: bytes | bytearray, pos: int = 0, end: int | None = None) -> int:
    """Size of the shortest frame (4 bytes or more) at `buf[pos]` whose CRC checks, else 0.

    Used for requests of function codes whose length we do not know: the frame ends where
    the CRC fits. One running CRC makes it a single pass over the bytes.
    """
    if end is None:
        end = len(buf)
    end = min(end, pos + MAX_RTU_ADU)
    table = _CRC_TABLE
    crc = 0xFFFF
    for i in range(pos, end - 2):
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
        if i - pos >= 1 and crc == buf[i + 1] | (buf[i + 2] << 8):
            return i + 3 - pos
    return 0


def rtu_request_size(buf: bytes | bytearray, pos: int = 0) -> int:
    """Size of the RTU request frame (CRC included) that starts at `buf[pos]`.

    Returns 0 when more bytes are needed to know, -1 when the function code is unknown
    (the caller then looks for a CRC match or drops the byte as noise).
    """
    avail = len(buf) - pos
    if avail < 2:
        return 0
    fc = buf[pos + 1]
    fixed = _FIXED_REQUEST.get(fc)
    if fixed is not None:
        return fixed + 2
    counted = _COUNTED_REQUEST.get(fc)
    if counted is None:
        return -1
    at, head = counted
    if avail <= at:
        return 0
    return head + buf[pos + at] + 2


def exception_pdu(function: int, code: int) -> bytes:
    """The exception reply PDU for `function`."""
    return bytes((function | 0x80, code))


def pack_bits(bits: Sequence[bool | int]) -> bytes:
    """Coils/discrete inputs packed as on the wire: first bit in the LSB of the first byte."""
    out = bytearray((len(bits) + 7) >> 3)
    for i, bit in enumerate(bits):
        if bit:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def unpack_bits(data: bytes | bytearray, count: int, start: int = 0) -> list[bool]:
    """`count` bits packed as on the wire, from `data[start:]`."""
    return [bool((data[start + (i >> 3)] >> (i & 7)) & 1) for i in range(count)]


def garble(frame: bytes | bytearray, ratio: float = 1.0) -> bytes:
    """What a receiver at the wrong line settings makes of `frame`: noise, never a valid frame.

    `ratio` is receiver baud / sender baud: a faster receiver samples each sent bit several
    times and sees more (garbage) characters, a slower one fewer. The bytes are a fixed
    scramble of the frame, so a test that fails on noise fails the same way every run.
    """
    n = max(1, round(len(frame) * ratio))
    size = len(frame) or 1
    out = bytearray(n)
    for i in range(n):
        src = frame[int(i / ratio) % size] if frame else 0
        out[i] = (src * 167 + 89 + i * 31) & 0xFF
    if crc_ok(out):  # vanishingly rare, but noise must never pass as a frame
        out[-1] ^= 0xFF
    return bytes(out)
