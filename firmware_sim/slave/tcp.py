"""Modbus TCP for the simulated slave: MBAP framing, many connections, pipelined requests.

Each connection is one `Session` (replies in request order, with their transaction ids); a
`StreamSession` holds what every TCP stream shares (connection bookkeeping, backpressure), and
RTU over TCP (`firmware_sim.slave.rtu`) builds on it. `ENDPOINTS` maps each server this package
started to its counters and live connections, for `slave_stats` and `close_slave`.
"""

from __future__ import annotations

import asyncio
from weakref import WeakKeyDictionary

from firmware_sim.slave.core import Core, RegisterSource, Reply, Session, SlaveStats
from firmware_sim.wire import MBAP

__all__ = ["ENDPOINTS", "Endpoint", "StreamSession", "serve_tcp"]


class Endpoint:
    """What a TCP server keeps beside its asyncio.Server: stats and live connections."""

    __slots__ = ("core", "transports", "__weakref__")

    def __init__(self, core: Core) -> None:
        self.core = core
        self.transports: set[asyncio.Transport] = set()


ENDPOINTS: WeakKeyDictionary[asyncio.AbstractServer, Endpoint] = WeakKeyDictionary()


class StreamSession(Session, asyncio.Protocol):
    """A TCP connection: bookkeeping and backpressure shared by MBAP and RTU-over-TCP."""

    __slots__ = ("endpoint", "transport", "buf")

    def __init__(self, endpoint: Endpoint) -> None:
        Session.__init__(self, endpoint.core)
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.endpoint.transports.add(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.transports.discard(self.transport)  # type: ignore[arg-type]
        self.stop()

    # A client that sends but does not read would make us buffer replies without bound.
    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class _TcpSession(StreamSession):
    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        n = len(buf)
        pos = 0
        while n - pos >= 8:  # MBAP header (7) + function code
            tid, pid, length, unit = MBAP.unpack_from(buf, pos)
            if length < 2 or length > 254:
                # No way to find the next frame in a TCP stream: give up the connection.
                self.core.stats.frame_errors += 1
                buf.clear()
                self.transport.close()
                return
            end = pos + 6 + length
            if end > n:
                break
            pdu = bytes(buf[pos + 7 : end])
            pos = end
            if pid != 0:  # not Modbus: the spec says drop it
                self.core.stats.frame_errors += 1
                continue
            self.submit(tid, unit, pdu)
            if self.transport.is_closing():  # an injected drop: the rest goes unheard
                buf.clear()
                return
        if pos:
            del buf[:pos]

    def emit(self, key: int, unit: int, resp: bytes | None, reply: Reply) -> bool:
        transport = self.transport
        if transport.is_closing():
            return False
        if reply.drop_connection:
            transport.close()
            return False
        if resp is None:
            return True
        if reply.corrupt:
            # TCP has no CRC: a "corrupt" reply is one cut short, its header still claiming
            # the full length, as from a serial server that lost bytes. The client waits for
            # the rest and times out; one that keeps its receive buffer across requests then
            # reads the next reply out of step (pymodbus drops it and recovers).
            keep = max(1, len(resp) // 2)
            frame = MBAP.pack(key, 0, len(resp) + 1, unit) + resp[:keep]
        else:
            frame = MBAP.pack(key, 0, len(resp) + 1, unit) + resp
        self.core.stats.replies += 1  # before the write, so a client never sees a reply uncounted
        transport.write(frame)
        return True


async def serve_tcp(
    source: RegisterSource,
    host: str,
    port: int,
    *,
    stats: SlaveStats | None = None,
    backlog: int = 1024,
) -> asyncio.Server:
    """Serve Modbus TCP for `source` on host:port (0 picks a free port: read it from `sockets`).

    Each connection's requests are answered in order with their transaction id; a unit id
    not in `source.units()` gets no reply. Counters: `slave_stats(server)` (or pass `stats`).
    Stop it with `close_slave(server)`, which also closes the open connections.
    """
    endpoint = Endpoint(Core(source, stats if stats is not None else SlaveStats()))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _TcpSession(endpoint), host, port, backlog=backlog)
    ENDPOINTS[server] = endpoint
    return server
