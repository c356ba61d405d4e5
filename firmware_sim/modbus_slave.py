"""Modbus slave (responder) of the simulated sensor firmware: TCP, RTU over TCP, RTU on a serial line.

The rest of the simulator plugs a `RegisterSource` in (the registers of the devices on one line
or endpoint); this module speaks the protocol for it. It is our own lean asyncio responder rather
than pymodbus's server so that faults can be injected at the frame level (a late, missing,
corrupt or cut-off reply; a closed connection; noise at the wrong baud rate) and so that a large
simulated site costs little CPU: no per-request logging, no request objects, one
`asyncio.Protocol` per connection and no task unless a reply is delayed.

Transports:

- `serve_tcp`: Modbus TCP (MBAP), many connections, pipelined requests answered in order.
- `serve_rtu_over_tcp`: RTU frames with CRC over a TCP stream, as a serial-to-Ethernet DTU carries them.
- `serve_rtu_serial`: RTU on a serial port, or on the master side of a pseudo-terminal
  (`open_pty_pair`) whose slave path the client opens like a real port.

A pseudo-terminal has no baud rate or parity of its own, so on a pty the slave reads the line
settings the client has set (on Linux, ``tcgetattr`` on the master returns the slave side's
termios) and answers noise when they differ from the device's `LineSettings`, as a device on a
misconfigured RS-485 line would. What the kernel lets us see: the baud rate and stop bits always;
odd parity (PARODD survives); even parity only when the client also turns on input parity
checking (INPCK, as libmodbus/mbpoll do). Linux's pty driver clears PARENB and forces CS8 on
every tcsetattr, so "even" set by pyserial (PARENB only) looks exactly like "none": that mismatch
cannot be detected on a pty and is let through. (Client side, glibc's tcsetattr also reports
EINVAL when a pty drops PARENB and nothing else changed, so pyserial/pymodbus clients with parity
E or O often cannot open a pty at all: test parity with mbpoll.)
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import stat
import struct
import termios
import time
import tty
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol
from weakref import WeakKeyDictionary

from firmware_sim.wire import (
    MAX_RTU_ADU,
    MBAP,
    ExceptionCode,
    crc16,
    crc_ok,
    exception_pdu,
    find_crc_frame,
    garble,
    pack_bits,
    rtu_request_size,
    unpack_bits,
)

__all__ = [
    "ClientLine",
    "ExceptionCode",
    "LineSettings",
    "RegisterSource",
    "Reply",
    "SerialSlave",
    "SlaveStats",
    "close_slave",
    "open_pty_pair",
    "read_client_line",
    "serve_rtu_over_tcp",
    "serve_rtu_serial",
    "serve_tcp",
    "slave_stats",
]

logger = logging.getLogger(__name__)


class Reply(NamedTuple):
    """What a register source answers for one request, faults included."""

    registers: list[int] | list[bool] | None = None  # data for reads
    exception: int = 0  # Modbus exception code (ExceptionCode); 0 = none
    delay: float = 0.0  # seconds (real time) to wait before answering
    silent: bool = False  # no reply at all: the client times out
    drop_connection: bool = False  # TCP: close the connection instead of answering
    corrupt: bool = False  # RTU: bad CRC; TCP: a frame cut short


class RegisterSource(Protocol):
    """The devices behind one line or endpoint, as the slave sees them."""

    def units(self) -> set[int]:
        """Unit ids present on this line/endpoint; others get no reply."""
        ...

    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        """Read `count` items of `table` (holding|input|coil|discrete) from wire address `address`."""
        ...

    def write(self, unit: int, table: str, address: int, values: list[int] | list[bool]) -> Reply:
        """Write `values` to `table` (holding|coil) from wire address `address`."""
        ...


@dataclass(slots=True)
class SlaveStats:
    """Counters of one slave (or several that share the object), for benchmarks.

    CPU time is `time.process_time()` of the whole process since `cpu_start`, so when a
    benchmark runs the simulator in its own process, `cpu_share` near 1.0 says the simulator,
    not the gateway, is the bottleneck.
    """

    requests: int = 0  # well-formed requests received, any unit
    replies: int = 0  # frames sent: data, exceptions, corrupt frames, line noise
    exceptions: int = 0  # exception replies among them
    ignored: int = 0  # requests left unanswered: other unit, broadcast, silent
    frame_errors: int = 0  # RTU bytes dropped while resyncing, TCP frames with a bad header
    line_mismatches: int = 0  # serial requests answered with noise (client baud/parity wrong)
    cpu_start: float = field(default_factory=time.process_time)
    wall_start: float = field(default_factory=time.monotonic)

    @property
    def cpu_seconds(self) -> float:
        """Process CPU time since `cpu_start`."""
        return time.process_time() - self.cpu_start

    @property
    def wall_seconds(self) -> float:
        """Monotonic time since `wall_start`."""
        return time.monotonic() - self.wall_start

    @property
    def cpu_share(self) -> float:
        """CPU seconds per wall second (1.0 = one core busy)."""
        wall = self.wall_seconds
        return self.cpu_seconds / wall if wall > 0 else 0.0

    def reset(self) -> None:
        """Zero the counters and restart the CPU and wall clocks."""
        self.requests = self.replies = self.exceptions = 0
        self.ignored = self.frame_errors = self.line_mismatches = 0
        self.cpu_start = time.process_time()
        self.wall_start = time.monotonic()


# --------------------------------------------------------------------------- request handling

_PLAIN = Reply()
_READ_TABLES = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_WRITE_FUNCTIONS = frozenset((5, 6, 15, 16))
_ADDR_COUNT = struct.Struct(">HH")
_ADDR_COUNT_BYTES = struct.Struct(">HHB")
_REGISTER_STRUCTS: dict[int, struct.Struct] = {}


def _registers_struct(count: int) -> struct.Struct:
    # struct's own format cache holds 100 entries and reads come in 125 sizes; keep ours.
    s = _REGISTER_STRUCTS.get(count)
    if s is None:
        s = _REGISTER_STRUCTS[count] = struct.Struct(f">{count}H")
    return s


class _Core:
    """Turns one request PDU into a reply PDU by asking the source; shared by all transports."""

    __slots__ = ("source", "stats", "_warned")

    def __init__(self, source: RegisterSource, stats: SlaveStats) -> None:
        self.source = source
        self.stats = stats
        self._warned = False

    def handle(self, unit: int, pdu: bytes) -> tuple[bytes | None, Reply]:
        """The reply PDU (None: send nothing) and the source's Reply with its fault flags."""
        stats = self.stats
        stats.requests += 1
        if unit not in self.source.units():
            if unit == 0 and pdu and pdu[0] in _WRITE_FUNCTIONS:
                self._broadcast(pdu)
            stats.ignored += 1
            return None, _PLAIN
        try:
            resp, reply = self._dispatch(unit, pdu)
        except Exception:
            # A bug in the source (or values out of uint16 range) must not kill the line; a
            # real device would answer "slave device failure". Log it once, not per request.
            if not self._warned:
                self._warned = True
                logger.exception("register source failed on unit %d request %s", unit, pdu.hex())
            resp, reply = exception_pdu(pdu[0], ExceptionCode.SLAVE_DEVICE_FAILURE), _PLAIN
        if resp is None:
            stats.ignored += 1
        elif resp[0] & 0x80:
            stats.exceptions += 1
        return resp, reply

    def _dispatch(self, unit: int, pdu: bytes) -> tuple[bytes | None, Reply]:
        fc = pdu[0]
        table = _READ_TABLES.get(fc)
        if table is not None:
            if len(pdu) != 5:
                return exception_pdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE), _PLAIN
            address, count = _ADDR_COUNT.unpack_from(pdu, 1)
            if not 1 <= count <= (2000 if fc < 3 else 125):
                return exception_pdu(fc, ExceptionCode.ILLEGAL_DATA_VALUE), _PLAIN
            if address + count > 0x10000:
                return exception_pdu(fc, ExceptionCode.ILLEGAL_DATA_ADDRESS), _PLAIN
            reply = self.source.read(unit, table, address, count)
            if reply.silent or reply.drop_connection:
                return None, reply
            if reply.exception:
                return exception_pdu(fc, reply.exception), reply
            data = reply.registers
            if data is None or len(data) != count:
                raise ValueError(f"source returned {0 if data is None else len(data)} of {count} items")
            if fc < 3:
                bits = pack_bits(data)
                return bytes((fc, len(bits))) + bits, reply
            return bytes((fc, 2 * count)) + _registers_struct(count).pack(*data), reply
        if fc in _WRITE_FUNCTIONS:
            decoded = _decode_write(pdu)
            if isinstance(decoded, int):
                return exception_pdu(fc, decoded), _PLAIN
            table, address, values, echo = decoded
            reply = self.source.write(unit, table, address, values)
            if reply.silent or reply.drop_connection:
                return None, reply
            if reply.exception:
                return exception_pdu(fc, reply.exception), reply
            return echo, reply
        if 0 < fc < 0x80:
            return exception_pdu(fc, ExceptionCode.ILLEGAL_FUNCTION), _PLAIN
        return None, _PLAIN  # not a request at all (an exception code): ignore

    def _broadcast(self, pdu: bytes) -> None:
        # Unit 0 writes reach every device on the line and none of them answers.
        decoded = _decode_write(pdu)
        if isinstance(decoded, int):
            return
        table, address, values, _ = decoded
        for unit in sorted(self.source.units()):
            try:
                self.source.write(unit, table, address, list(values))
            except Exception:
                logger.exception("register source failed on broadcast write to unit %d", unit)


def _decode_write(pdu: bytes) -> tuple[str, int, list, bytes] | int:
    """(table, address, values, reply PDU) of a write request, or the exception code."""
    fc = pdu[0]
    if fc == 5 or fc == 6:
        if len(pdu) != 5:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        address, value = _ADDR_COUNT.unpack_from(pdu, 1)
        if fc == 6:
            return "holding", address, [value], pdu
        if value != 0 and value != 0xFF00:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        return "coil", address, [value == 0xFF00], pdu
    if len(pdu) < 6:
        return ExceptionCode.ILLEGAL_DATA_VALUE
    address, qty, nbytes = _ADDR_COUNT_BYTES.unpack_from(pdu, 1)
    if fc == 15:
        ok = 1 <= qty <= 0x7B0 and nbytes == (qty + 7) >> 3
    else:
        ok = 1 <= qty <= 0x7B and nbytes == 2 * qty
    if not ok or len(pdu) != 6 + nbytes:
        return ExceptionCode.ILLEGAL_DATA_VALUE
    if address + qty > 0x10000:
        return ExceptionCode.ILLEGAL_DATA_ADDRESS
    if fc == 15:
        return "coil", address, unpack_bits(pdu, qty, 6), pdu[:5]
    return "holding", address, list(_registers_struct(qty).unpack_from(pdu, 6)), pdu[:5]


class _Session:
    """One client stream: answers its requests strictly in order, waiting out injected delays.

    Without delays a request is answered inside `submit`, with no task and no queue entry;
    a delayed reply starts a drain task and every later request queues behind it, so a
    pipelined Modbus TCP client or a serial master that retries gets replies in order.
    """

    __slots__ = ("core", "queue", "drain_task")

    def __init__(self, core: _Core) -> None:
        self.core = core
        self.queue: deque = deque()
        self.drain_task: asyncio.Task | None = None

    def submit(self, key: int, unit: int, pdu: bytes) -> None:
        if self.queue:
            self.queue.append((key, unit, pdu, None))
            return
        resp, reply = self.core.handle(unit, pdu)
        if reply.delay > 0:
            self.queue.append((key, unit, resp, reply))
            self.drain_task = asyncio.get_running_loop().create_task(self._drain())
        else:
            self.emit(key, unit, resp, reply)

    async def _drain(self) -> None:
        queue = self.queue
        while queue:
            key, unit, data, reply = queue[0]
            if reply is None:  # queued raw: the source is asked when the device gets to it
                resp, reply = self.core.handle(unit, data)
            else:
                resp = data
            if reply.delay > 0:
                await asyncio.sleep(reply.delay)
            queue.popleft()
            if not self.emit(key, unit, resp, reply):
                queue.clear()
        self.drain_task = None

    def stop(self) -> None:
        self.queue.clear()
        if self.drain_task is not None:
            self.drain_task.cancel()
            self.drain_task = None

    def emit(self, key: int, unit: int, resp: bytes | None, reply: Reply) -> bool:
        """Send one reply; False when the stream is gone and the rest of the queue is moot."""
        raise NotImplementedError


# --------------------------------------------------------------------------- Modbus TCP

class _Endpoint:
    """What a TCP server keeps beside its asyncio.Server: stats and live connections."""

    __slots__ = ("core", "transports", "__weakref__")

    def __init__(self, core: _Core) -> None:
        self.core = core
        self.transports: set[asyncio.Transport] = set()


_ENDPOINTS: WeakKeyDictionary[asyncio.AbstractServer, _Endpoint] = WeakKeyDictionary()


class _StreamSession(_Session, asyncio.Protocol):
    """A TCP connection: bookkeeping and backpressure shared by MBAP and RTU-over-TCP."""

    __slots__ = ("endpoint", "transport", "buf")

    def __init__(self, endpoint: _Endpoint) -> None:
        _Session.__init__(self, endpoint.core)
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


class _TcpSession(_StreamSession):
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
    endpoint = _Endpoint(_Core(source, stats if stats is not None else SlaveStats()))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _TcpSession(endpoint), host, port, backlog=backlog)
    _ENDPOINTS[server] = endpoint
    return server


def slave_stats(server: asyncio.AbstractServer | SerialSlave) -> SlaveStats:
    """The counters of a slave started by this module."""
    if isinstance(server, SerialSlave):
        return server.stats
    return _ENDPOINTS[server].core.stats


async def close_slave(server: asyncio.AbstractServer | SerialSlave) -> None:
    """Stop listening, close every open connection and wait until the server is down."""
    if isinstance(server, SerialSlave):
        server.close()
        await server.wait_closed()
        return
    server.close()
    endpoint = _ENDPOINTS.get(server)
    if endpoint is not None:
        for transport in list(endpoint.transports):
            transport.abort()
    await server.wait_closed()


# --------------------------------------------------------------------------- RTU framing

class _RtuFraming(_Session):
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


class _RtuTcpSession(_RtuFraming, _StreamSession):
    __slots__ = ("gap", "gap_handle")

    def __init__(self, endpoint: _Endpoint, gap: float) -> None:
        _StreamSession.__init__(self, endpoint)
        self.gap = gap
        self.gap_handle: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gap_handle is not None:
            self.gap_handle.cancel()
            self.gap_handle = None
        _StreamSession.connection_lost(self, exc)

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
    endpoint = _Endpoint(_Core(source, stats if stats is not None else SlaveStats()))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _RtuTcpSession(endpoint, gap), host, port, backlog=backlog
    )
    _ENDPOINTS[server] = endpoint
    return server


# --------------------------------------------------------------------------- serial line

@dataclass(frozen=True, slots=True)
class LineSettings:
    """A device's configured serial line (what its DIP switches or setup menu say)."""

    baudrate: int = 9600
    parity: str = "N"  # N, E or O
    stopbits: int = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"parity must be N, E or O, not {self.parity!r}")
        if self.stopbits not in (1, 2):
            raise ValueError(f"stopbits must be 1 or 2, not {self.stopbits!r}")
        if self.bytesize not in (7, 8):
            raise ValueError(f"bytesize must be 7 or 8, not {self.bytesize!r}")
        if self.baudrate <= 0:
            raise ValueError(f"baudrate must be positive, not {self.baudrate!r}")


class ClientLine(NamedTuple):
    """The line settings a client has put on a pty, as far as the kernel shows them."""

    baudrate: int | None  # None: a speed code we cannot map
    parity: str | None  # E, O (M, S); None: none, or parity set without INPCK (cannot tell)
    stopbits: int


_CMSPAR = getattr(termios, "CMSPAR", 0o10000000000)
_BAUD_OF_CODE = {
    getattr(termios, name): int(name[1:])
    for name in dir(termios)
    if name[:1] == "B" and name[1:].isdigit() and int(name[1:]) > 0
}
_CODE_OF_BAUD = {baud: code for code, baud in _BAUD_OF_CODE.items()}


def _client_line(attrs: list) -> ClientLine:
    iflag, cflag, speed = attrs[0], attrs[2], attrs[5]
    # Linux's pty driver clears PARENB on every tcsetattr, so parity shows only through the
    # bits around it: PARODD (kept), INPCK (input parity checking: libmodbus sets it with
    # parity, pyserial never does) and PARENB itself where a system keeps it.
    if cflag & _CMSPAR:
        parity: str | None = "M" if cflag & termios.PARODD else "S"
    elif cflag & termios.PARODD:
        parity = "O"
    elif cflag & termios.PARENB or iflag & termios.INPCK:
        parity = "E"
    else:
        parity = None
    return ClientLine(_BAUD_OF_CODE.get(speed), parity, 2 if cflag & termios.CSTOPB else 1)


def read_client_line(master_fd: int) -> ClientLine:
    """The line settings the client set on the slave side of the pty held as `master_fd`.

    Linux answers tcgetattr on a pty master with the slave's termios, so no extra fd is needed.
    """
    return _client_line(termios.tcgetattr(master_fd))


def _parity_fits(device: str, client: str | None) -> bool:
    if client is None:  # none, or even set by a client that leaves INPCK off: cannot tell
        return device != "O"
    return client == device


def open_pty_pair() -> tuple[int, str]:
    """A pseudo-terminal in raw mode: (master fd for `serve_rtu_serial`, slave path for the client).

    The caller owns the master fd and closes it when done.
    """
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        path = os.ttyname(slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return master, path


def _is_pty_master(fd: int) -> bool:
    st = os.fstat(fd)
    # Every Unix98 pty master is the multiplexer device, char 5:2 (/dev/ptmx) on Linux.
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 5 and os.minor(st.st_rdev) == 2


_TIOCGPTPEER = 0x5441  # Linux >= 4.13: open the slave of a pty from its master
_TIOCGPTN = 0x80045430  # Linux: number of the pty, for /dev/pts/N


def _flush_client_input(master: int) -> None:
    """Drop what the client side of the pty has not read yet.

    A pty keeps those bytes after the client closes the slave, so without this the next
    client would read the last one's leftovers (the tail of a noise burst, a late reply);
    a real serial port starts every open with an empty input buffer.
    """
    flags = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK
    try:
        peer = fcntl.ioctl(master, _TIOCGPTPEER, flags)
    except OSError:
        try:
            number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, b"\0\0\0\0"))[0]
            peer = os.open(f"/dev/pts/{number}", flags)
        except OSError:
            return
    try:
        termios.tcflush(peer, termios.TCIFLUSH)
    finally:
        os.close(peer)


def _configure_port(fd: int, line: LineSettings) -> None:
    """Set a real serial port (or another tty) to the device's line settings, raw."""
    tty.setraw(fd)
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB | _CMSPAR)
    cflag |= termios.CLOCAL | termios.CREAD | (termios.CS8 if line.bytesize == 8 else termios.CS7)
    iflag &= ~(termios.INPCK | termios.ISTRIP)
    if line.parity != "N":
        cflag |= termios.PARENB | (termios.PARODD if line.parity == "O" else 0)
        iflag |= termios.INPCK
    if line.stopbits == 2:
        cflag |= termios.CSTOPB
    code = _CODE_OF_BAUD.get(line.baudrate)
    if code is None:
        raise ValueError(f"baud rate {line.baudrate} has no termios constant")
    try:
        termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, code, code, cc])
    except termios.error:
        # The slave side of a pty (e.g. one end of a socat pair) cannot keep PARENB and glibc
        # reports that as EINVAL; it has no parity to set anyway.
        if not (line.parity != "N" and 136 <= os.major(os.fstat(fd).st_rdev) <= 143):
            raise


# How often to look whether a client has opened the pty again (reads fail with EIO until then).
_PROBE_INTERVAL = 0.02


class _SerialSession(_RtuFraming):
    __slots__ = (
        "fd", "buf", "gap", "gap_handle", "line", "pty", "loop", "probe_handle", "attached",
        "_speed_code",
    )

    def __init__(
        self, core: _Core, fd: int, line: LineSettings, pty: bool, gap: float
    ) -> None:
        _RtuFraming.__init__(self, core)
        self.fd = fd
        self.buf = bytearray()
        self.gap = gap
        self.gap_handle: asyncio.TimerHandle | None = None
        self.line = line
        self.pty = pty
        self.loop = asyncio.get_running_loop()
        self.probe_handle: asyncio.TimerHandle | None = None
        self.attached = True  # a client holds the line (until a read says otherwise)
        self._speed_code = _CODE_OF_BAUD.get(line.baudrate)

    def start(self) -> None:
        self.loop.add_reader(self.fd, self.on_readable)

    def stop(self) -> None:
        self.loop.remove_reader(self.fd)
        for handle in (self.gap_handle, self.probe_handle):
            if handle is not None:
                handle.cancel()
        self.gap_handle = self.probe_handle = None
        _RtuFraming.stop(self)

    def request(self, frame: bytes) -> None:
        if self.pty:
            ratio = self._mismatch()
            if ratio:
                stats = self.core.stats
                stats.requests += 1
                if frame[0] in self.core.source.units():
                    # The device cannot make sense of the request; the client hears noise.
                    stats.line_mismatches += 1
                    stats.replies += 1
                    self.write(garble(frame, ratio))
                else:
                    stats.ignored += 1
                return
        self.submit(0, frame[0], frame[1:-2])

    def _mismatch(self) -> float:
        """0.0 when the client's line fits the device's, else client baud / device baud."""
        attrs = termios.tcgetattr(self.fd)
        line = self.line
        if self._speed_code is not None and attrs[5] != self._speed_code:
            client_baud = _BAUD_OF_CODE.get(attrs[5])
            return client_baud / line.baudrate if client_baud else 1.0
        if not _parity_fits(line.parity, _client_line(attrs).parity):
            return 1.0
        return 0.0

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            # The client closed the line (or a USB adapter went away). The fd stays readable
            # (hung up) until a client opens it again, so stop watching it and look again
            # now and then. What the client left unread must not greet the next one.
            self.attached = False
            self.loop.remove_reader(self.fd)
            if self.pty:
                _flush_client_input(self.fd)
            self.probe_handle = self.loop.call_later(_PROBE_INTERVAL, self._probe)
            return
        if data:
            self.feed(data)

    def _probe(self) -> None:
        self.probe_handle = None
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            data = b""
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            self.probe_handle = self.loop.call_later(_PROBE_INTERVAL, self._probe)
            return
        # A client has opened the line: a new session starts with nothing stale to read.
        if self.pty:
            _flush_client_input(self.fd)
        self.attached = True
        self.buf.clear()
        self.loop.add_reader(self.fd, self.on_readable)
        if data:
            self.feed(data)

    def write(self, frame: bytes) -> None:
        if not self.attached:
            return  # a late reply with nobody on the line: on a wire it is simply lost
        try:
            os.write(self.fd, frame)
        except OSError:
            # Nobody reads the line and its buffer is full (or nobody holds it): on a wire
            # the bytes would just pass unheard, so drop them.
            logger.debug("serial reply of %d bytes dropped", len(frame))

    def drop(self) -> bool:
        return False  # a serial line cannot be hung up on: the device stays silent


class SerialSlave:
    """A running RTU slave on a serial port or pty master, shaped like asyncio.Server."""

    def __init__(self, session: _SerialSession, own_fd: bool) -> None:
        self._session = session
        self._own_fd = own_fd
        self._serving = True
        session.start()

    @property
    def stats(self) -> SlaveStats:
        return self._session.core.stats

    @property
    def line(self) -> LineSettings:
        return self._session.line

    @property
    def fd(self) -> int:
        return self._session.fd

    @property
    def client_attached(self) -> bool:
        """Whether a client holds the line open, as last seen (a pty reports the close at once,
        but the slave notices only when its loop gets to it)."""
        return self._session.attached

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        """Stop serving (call it on the loop's thread); an fd passed in stays open."""
        if not self._serving:
            return
        self._serving = False
        self._session.stop()
        if self._own_fd:
            os.close(self._session.fd)

    async def wait_closed(self) -> None:
        await asyncio.sleep(0)  # let a cancelled drain task finish


async def serve_rtu_serial(
    source: RegisterSource,
    port_path_or_fd: str | os.PathLike[str] | int,
    line: LineSettings | None = None,
    *,
    stats: SlaveStats | None = None,
    gap: float | None = None,
) -> SerialSlave:
    """Serve RTU on a serial line: a port path, or an fd (usually a pty master from `open_pty_pair`).

    On a pty master the client's own termios are read on each request and a baud rate or
    parity that differs from `line` gets noise back (see the module docstring for what a
    pty can show), and each client session starts with an empty input buffer. A real port
    is set to `line` and its UART does the rest. The caller keeps ownership of an fd it
    passes; a path is opened and closed here. `gap` (seconds of silence that end a partial
    frame) defaults to 3.5 characters but at least 50 ms, since ptys and USB adapters
    deliver bytes in bursts.
    """
    line = line if line is not None else LineSettings()
    if isinstance(port_path_or_fd, int):
        fd, own = port_path_or_fd, False
    else:
        fd, own = os.open(port_path_or_fd, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK), True
    try:
        os.set_blocking(fd, False)
        pty = _is_pty_master(fd)
        if not pty:
            _configure_port(fd, line)
    except BaseException:
        if own:
            os.close(fd)
        raise
    if gap is None:
        bits = 1 + line.bytesize + (line.parity != "N") + line.stopbits
        gap = max(0.05, 3.5 * bits / line.baudrate)
    core = _Core(source, stats if stats is not None else SlaveStats())
    return SerialSlave(_SerialSession(core, fd, line, pty, gap), own)
