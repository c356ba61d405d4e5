"""The PDU core of the simulated slave: a request PDU in, the reply PDU out, faults injected.

A `RegisterSource` (the devices behind one line or endpoint) answers each read or write with a
`Reply` that may carry a fault: an exception code, a delay, no reply, a dropped connection or a
corrupt frame. `Core` turns a request into the reply PDU by asking the source, whatever the
transport; `Session` answers one client stream's requests strictly in order, waiting out injected
delays. `SlaveStats` counts what the slave did, for benchmarks. The transports (`tcp`, `rtu`,
`serial_slave`) frame and send what these produce.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from firmware_sim.wire import ExceptionCode, exception_pdu, pack_bits, unpack_bits

__all__ = ["Core", "RegisterSource", "Reply", "Session", "SlaveStats"]

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


class Core:
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


class Session:
    """One client stream: answers its requests strictly in order, waiting out injected delays.

    Without delays a request is answered inside `submit`, with no task and no queue entry;
    a delayed reply starts a drain task and every later request queues behind it, so a
    pipelined Modbus TCP client or a serial master that retries gets replies in order.
    """

    __slots__ = ("core", "queue", "drain_task")

    def __init__(self, core: Core) -> None:
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
