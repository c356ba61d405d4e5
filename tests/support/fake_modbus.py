"""A fake Modbus device that answers garbage on request: every kind of malformed reply a broken
device or TCP-to-RTU converter sends, over a real socket (Modbus TCP, or RTU frames over TCP).

Pure test code, deliberately independent of the gateway's own Modbus code: it parses the read
requests (FC 1-4) itself and builds each reply byte by byte. `mode` may be changed at any time
from another thread; it applies to the next request (or `script` lists the modes of the next
few requests). The register values are a pure function
of the address and `offset` (`value_at`), so a test can tell a good reading from a wrong one
and a fresh reply from a stale one.

Modes (`MODES`):

- ``good``: the correct reply.
- ``wrong_fc``: the right data under another function code (4 for 3, 3 for 4, 2 for 1, 1 for 2).
- ``wrong_unit``: the reply comes from unit id + 1.
- ``wrong_tid`` (TCP only): the transaction id is not the request's.
- ``zero_tid`` (TCP only): transaction id 0, which pymodbus alone takes for any request's.
- ``too_many`` / ``too_few``: two registers more, one register less than asked, with a byte
  count and frame length that agree with the data (a well-formed reply to another request).
- ``odd_count``: an odd byte count (2N - 1) and as many data bytes.
- ``count_above_data``: the byte count says 2N, the frame carries only 2N - 2 data bytes.
- ``count_below_data``: the byte count says 2N, the frame carries 2N + 4 data bytes.
- ``truncated``: the frame's header claims the full reply, only part of it is sent; the
  connection stays open.
- ``oversized``: TCP: an MBAP length of 300 (a Modbus TCP frame holds at most 254 after the
  length field) and 300 bytes; RTU: a CRC-valid frame whose byte count claims 250 bytes.
- ``trailing``: the correct reply followed by 5 stray bytes in the same write.
- ``drip``: the correct reply, one byte per second.
- ``reset``: the connection is reset (RST) once the request is read.
- ``exception``: exception 4 (slave device failure).
- ``silent``: no reply.
- ``late``: the correct reply after `delay` seconds (a device slower than its timeout).
- ``bad_crc`` (RTU only): the correct reply with its CRC inverted.
- ``raw``: whatever `raw(tid, unit, fc, address, count, good)` returns (`good` is the correct
  frame), for property tests that make up their own replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from collections.abc import Callable

from firmware_sim.wire import crc16

MODES = ("good", "wrong_fc", "wrong_unit", "wrong_tid", "zero_tid", "too_many", "too_few", "odd_count",
         "count_above_data", "count_below_data", "truncated", "oversized", "trailing", "drip", "reset", "exception",
         "silent", "late", "bad_crc", "raw")
_OTHER_FC = {1: 2, 2: 1, 3: 4, 4: 3}


def value_at(address: int, offset: int = 0) -> int:
    """What the fake holds in register (or, odd/even, in coil) `address`."""
    return (1000 + 7 * address + offset) & 0xFFFF


def _data(fc: int, address: int, count: int, offset: int) -> bytes:
    if fc in (1, 2):
        bits = [value_at(address + i, offset) & 1 for i in range(count)]
        out = bytearray((count + 7) // 8)
        for i, b in enumerate(bits):
            out[i // 8] |= b << (i % 8)
        return bytes(out)
    return b"".join(struct.pack(">H", value_at(address + i, offset)) for i in range(count))


class FakeDevice:
    """One fake device (any unit id) on `host:port`; `rtu` switches the framing to RTU + CRC."""

    def __init__(self, host: str, port: int, mode: str = "good", rtu: bool = False):
        self.host = host
        self.port = port
        self.mode = mode
        self.rtu = rtu
        self.offset = 0
        self.delay = 1.0
        self.script: list[str] = []  # modes for the next requests, before `mode` applies again
        self.requests = 0
        self.answered: Counter[str] = Counter()  # requests per mode they were answered in
        self.connections = 0
        self.raw: Callable[[int, int, int, int, int, bytes], bytes] | None = None

    async def start(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._serve, self.host, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                if self.rtu:
                    req = await reader.readexactly(8)
                    tid, unit, fc = 0, req[0], req[1]
                    address, count = struct.unpack(">HH", req[2:6])
                else:
                    req = await reader.readexactly(12)
                    tid, _, _, unit, fc, address, count = struct.unpack(">HHHBBHH", req)
                self.requests += 1
                mode = self.script.pop(0) if self.script else self.mode
                self.answered[mode] += 1
                if mode == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if mode == "silent":
                    continue
                frame = self._reply(mode, tid, unit, fc, address, count)
                if mode == "raw" and self.raw is not None:
                    frame = self.raw(tid, unit, fc, address, count, frame)
                if mode == "late":
                    await asyncio.sleep(self.delay)
                if mode == "drip":
                    for i in range(len(frame)):
                        writer.write(frame[i:i + 1])
                        await writer.drain()
                        await asyncio.sleep(1.0)
                    continue
                writer.write(frame)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # the test is over: end quietly (a cancelled stream handler logs an error)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _reply(self, mode: str, tid: int, unit: int, fc: int, address: int, count: int) -> bytes:
        data = _data(fc, address, count, self.offset)
        byte_count = len(data)
        if mode == "wrong_fc":
            fc = _OTHER_FC.get(fc, fc ^ 0x07)
        elif mode == "wrong_unit":
            unit = (unit + 1) & 0xFF
        elif mode == "wrong_tid":
            tid = (tid + 0x1234) & 0xFFFF
        elif mode == "zero_tid":
            tid = 0
        elif mode == "too_many":
            data = _data(fc, address, count + 2, self.offset)
            byte_count = len(data)
        elif mode == "too_few":
            data = _data(fc, address, max(0, count - 1), self.offset) if fc in (3, 4) \
                else data[:-1]
            byte_count = len(data)
        elif mode == "odd_count":
            data = data[:-1] if len(data) > 1 else data + b"\x00"
            byte_count = len(data)
        elif mode == "count_above_data":
            data = data[:-2]
        elif mode == "count_below_data":
            data = data + b"\x12\x34\x56\x78"
        if mode == "exception":
            pdu = bytes([fc | 0x80, 4])
        elif mode == "oversized":
            pdu = bytes([fc, 250]) + bytes(range(250)) if self.rtu else bytes([fc]) + bytes(298)
        else:
            pdu = bytes([fc, byte_count]) + data
        if self.rtu:
            frame = bytes([unit]) + pdu
            crc = crc16(frame)
            if mode == "bad_crc":
                crc ^= 0xFFFF
            frame += crc.to_bytes(2, "little")
        else:
            frame = struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
        if mode == "truncated":
            return frame[:len(frame) - 3]
        if mode == "trailing":
            return frame + b"\x00\x07\x00\x00\x00"
        return frame
