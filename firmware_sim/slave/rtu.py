"""RTU framing for the simulated slave, and RTU frames over TCP as a serial device server passes
them on.

`RtuFraming` cuts requests out of a byte stream by their function code's length and checks the
CRC, resynchronising after noise and dropping a partial frame after a silence; it is shared by RTU
over TCP (here) and RTU on a serial line (`firmware_sim.slave.serial_slave`).
"""

from __future__ import annotations

import asyncio

from firmware_sim.slave.core import Core, RegisterSource, Reply, Session, SlaveStats
from firmware_sim.slave.tcp import ENDPOINTS, Endpoint, StreamSession
from firmware_sim.wire import MAX_RTU_ADU, crc16, crc_ok, find_crc_frame, rtu_request_size

__all__ = ["RtuFraming", "serve_rtu_over_tcp"]


class RtuFraming(Session):
    """RTU request framing over a byte stream: cut by function-code length, check the CRC.

    On a CRC error or an unknown byte one byte is dropped and the cut retried, which finds
    the next frame after noise. A partial frame followed by silence (`gap` seconds) is noise
    too, as the inter-frame gap ends a frame on a real line.
    """

    __slots__ = ()

    # Subclasses provide: buf (bytearray), gap (float), gap_handle, write(bytes), drop() -> bool.

    def feed(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        self._cut()
        if self.gap_handle is not None:
            self.gap_handle.cancel()
            self.gap_handle = None
        if buf:
            self.gap_handle = asyncio.get_running_loop().call_later(self.gap, self._on_gap)

    def _cut(self) -> None:
        buf = self.buf
        stats = self.core.stats
        n = len(buf)
        pos = 0
        while n - pos >= 4:
            size = rtu_request_size(buf, pos)
            if size == 0:
                break
            if size < 0:  # unknown function: the frame ends where a CRC fits, if anywhere
                size = find_crc_frame(buf, pos, n)
                if size == 0:
                    pos += 1
                    stats.frame_errors += 1
                    continue
            elif size > MAX_RTU_ADU:
                pos += 1
                stats.frame_errors += 1
                continue
            elif n - pos < size:
                break
            elif not crc_ok(buf, pos, pos + size):
                pos += 1
                stats.frame_errors += 1
                continue
            frame = bytes(buf[pos : pos + size])
            pos += size
            self.request(frame)
        if pos:
            del buf[:pos]

    def _on_gap(self) -> None:
        self.gap_handle = None
        buf = self.buf
        # Nothing more is coming: what is left cannot complete. Drop a byte at a time so a
        # whole frame hidden behind a noise byte that claimed a long length is still found.
        while buf:
            del buf[0]
            self.core.stats.frame_errors += 1
            self._cut()

    def request(self, frame: bytes) -> None:
        self.submit(0, frame[0], frame[1:-2])

    def emit(self, key: int, unit: int, resp: bytes | None, reply: Reply) -> bool:
        if reply.drop_connection and self.drop():
            return False
        if resp is None:
            return True
        frame = bytes((unit,)) + resp
        crc = crc16(frame)
        if reply.corrupt:
            crc ^= 0xFFFF  # every bit wrong, so it can never pass
        self.core.stats.replies += 1
        self.write(frame + crc.to_bytes(2, "little"))
        return True

    def write(self, frame: bytes) -> None:
        raise NotImplementedError

    def drop(self) -> bool:
        raise NotImplementedError


class _RtuTcpSession(RtuFraming, StreamSession):
    __slots__ = ("gap", "gap_handle")

    def __init__(self, endpoint: Endpoint, gap: float) -> None:
        StreamSession.__init__(self, endpoint)
        self.gap = gap
        self.gap_handle: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gap_handle is not None:
            self.gap_handle.cancel()
            self.gap_handle = None
        StreamSession.connection_lost(self, exc)

    def write(self, frame: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(frame)

    def drop(self) -> bool:
        self.transport.close()
        return True


async def serve_rtu_over_tcp(
    source: RegisterSource,
    host: str,
    port: int,
    *,
    stats: SlaveStats | None = None,
    gap: float = 0.5,
    backlog: int = 1024,
) -> asyncio.Server:
    """Serve RTU frames (with CRC) over TCP, as a serial device server (DTU) passes them on.

    One request at a time per connection, in order; `gap` seconds of silence end a partial frame.
    """
    endpoint = Endpoint(Core(source, stats if stats is not None else SlaveStats()))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _RtuTcpSession(endpoint, gap), host, port, backlog=backlog
    )
    ENDPOINTS[server] = endpoint
    return server
