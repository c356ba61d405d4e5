"""The simulator's Modbus slave against real clients, over loopback sockets and pseudo-terminals.

Clients: pymodbus 3.16 (TCP, RTU over TCP, RTU on a pty), mbpoll (libmodbus) and raw frames
for what a library hides (transaction ids, pipelining, CRC, noise). The slaves run in an event
loop on a background thread, so the blocking clients can run in the test itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import serial
from pymodbus.client import AsyncModbusTcpClient, ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from firmware_sim.modbus_slave import (
    ClientLine,
    LineSettings,
    Reply,
    SerialSlave,
    SlaveStats,
    close_slave,
    open_pty_pair,
    read_client_line,
    serve_rtu_over_tcp,
    serve_rtu_serial,
    serve_tcp,
    slave_stats,
)
from firmware_sim.wire import (
    MBAP,
    add_crc,
    crc16,
    crc_ok,
    find_crc_frame,
    garble,
    pack_bits,
    rtu_request_size,
    unpack_bits,
)
from tests.support.services import require_binary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOST = "127.0.0.1"


# --------------------------------------------------------------------------- fixtures

class FixedSource:
    """Two (or more) devices with fixed tables; `faults` injects a Reply at (unit, table, address)."""

    SIZE = 100

    def __init__(self, units: tuple[int, ...] = (1, 2)) -> None:
        self._units = set(units)
        self.tables = {
            u: {
                "holding": [u * 1000 + i for i in range(self.SIZE)],
                "input": [u * 2000 + i for i in range(self.SIZE)],
                "coil": [i % 3 == 0 for i in range(self.SIZE)],
                "discrete": [i % 2 == 1 for i in range(self.SIZE)],
            }
            for u in units
        }
        self.faults: dict[tuple[int, str, int], Reply] = {}

    def units(self) -> set[int]:
        return self._units

    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        data = self.tables[unit][table]
        if address + count > len(data):
            return Reply(exception=2)
        fault = self.faults.get((unit, table, address))
        values = data[address : address + count]
        return fault._replace(registers=values) if fault else Reply(registers=values)

    def write(self, unit: int, table: str, address: int, values: list) -> Reply:
        data = self.tables[unit][table]
        if address + len(values) > len(data):
            return Reply(exception=2)
        fault = self.faults.get((unit, table, address))
        if fault and (fault.exception or fault.silent or fault.drop_connection):
            return fault
        data[address : address + len(values)] = values
        return fault or Reply()


class LoopThread:
    """An asyncio loop on a daemon thread; `run` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="slave-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


@pytest.fixture
def source() -> FixedSource:
    return FixedSource()


@pytest.fixture
def tcp_slave(loop_thread: LoopThread, source: FixedSource) -> Iterator[tuple[int, asyncio.Server]]:
    server = loop_thread.run(serve_tcp(source, HOST, 0))
    yield server.sockets[0].getsockname()[1], server
    loop_thread.run(close_slave(server))


@pytest.fixture
def rtu_tcp_slave(
    loop_thread: LoopThread, source: FixedSource
) -> Iterator[tuple[int, asyncio.Server]]:
    server = loop_thread.run(serve_rtu_over_tcp(source, HOST, 0))
    yield server.sockets[0].getsockname()[1], server
    loop_thread.run(close_slave(server))


@pytest.fixture
def pty_line(
    loop_thread: LoopThread, source: FixedSource
) -> Iterator[Callable[..., tuple[str, SerialSlave, int]]]:
    """Factory: a pty served as an RS-485 line with the given device settings."""
    opened: list[tuple[int, SerialSlave]] = []

    def make(line: LineSettings | None = None) -> tuple[str, SerialSlave, int]:
        master, path = open_pty_pair()
        slave = loop_thread.run(serve_rtu_serial(source, master, line or LineSettings()))
        opened.append((master, slave))
        return path, slave, master

    yield make
    for master, slave in opened:
        loop_thread.run(close_slave(slave))
        os.close(master)


def tcp_client(port: int, timeout: float = 1.0, framer: FramerType = FramerType.SOCKET) -> ModbusTcpClient:
    client = ModbusTcpClient(HOST, port=port, timeout=timeout, retries=0, framer=framer)
    assert client.connect()
    return client


def serial_client(path: str, baudrate: int = 9600, parity: str = "N", timeout: float = 0.5) -> ModbusSerialClient:
    client = ModbusSerialClient(port=path, baudrate=baudrate, parity=parity, timeout=timeout, retries=0)
    assert client.connect()
    return client


# --------------------------------------------------------------------------- raw frames

def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    return MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


def recv_mbap(sock: socket.socket) -> tuple[int, int, bytes]:
    tid, pid, length, unit = MBAP.unpack(recv_exact(sock, 7))
    assert pid == 0
    return tid, unit, recv_exact(sock, length - 1)


def raw_tcp(port: int, timeout: float = 1.0) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_fd(fd: int, quiet: float = 0.3, limit: float = 2.0) -> bytes:
    """Bytes that arrive on `fd` until it has been quiet for `quiet` seconds."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], quiet)
        if not ready:
            break
        data += os.read(fd, 4096)
    return data


def rtu(unit: int, pdu: bytes) -> bytes:
    return add_crc(bytes((unit,)) + pdu)


def read_request(fc: int, address: int, count: int) -> bytes:
    return bytes((fc,)) + address.to_bytes(2, "big") + count.to_bytes(2, "big")


# --------------------------------------------------------------------------- wire

def test_crc_and_rtu_framing_helpers_match_the_reference_frame() -> None:
    # A widely quoted reference frame: read 10 holding registers of unit 1, CRC C5 CD.
    frame = add_crc(bytes.fromhex("01030000000A"))
    assert frame == bytes.fromhex("01030000000AC5CD")
    assert crc16(bytes.fromhex("01030000000A")) == 0xCDC5
    assert crc_ok(frame)
    assert not crc_ok(frame[:-1] + b"\x00")
    assert rtu_request_size(frame) == 8
    fc16 = rtu(1, bytes.fromhex("10000A000204") + b"\x00\x01\x00\x02")
    assert rtu_request_size(fc16[:6]) == 0  # byte count not seen yet
    assert rtu_request_size(fc16) == len(fc16)
    assert rtu_request_size(rtu(1, b"\x41\x00")) == -1
    assert find_crc_frame(b"\x01\x41\x00" + crc16(b"\x01\x41\x00").to_bytes(2, "little") + b"xx") == 5
    assert unpack_bits(pack_bits([True, False, True] * 4), 12) == [True, False, True] * 4
    for ratio in (0.5, 1.0, 2.0):
        noise = garble(frame, ratio)
        assert len(noise) == round(len(frame) * ratio)
        assert not crc_ok(noise)


# --------------------------------------------------------------------------- Modbus TCP

def test_tcp_reads_all_four_tables_of_two_units(tcp_slave: tuple[int, asyncio.Server]) -> None:
    port, _ = tcp_slave
    client = tcp_client(port)
    try:
        for unit in (1, 2):
            rr = client.read_holding_registers(5, count=4, device_id=unit)
            assert rr.registers == [unit * 1000 + i for i in range(5, 9)]
            rr = client.read_input_registers(0, count=100, device_id=unit)
            assert rr.registers == [unit * 2000 + i for i in range(100)]
            rr = client.read_coils(3, count=10, device_id=unit)
            assert rr.bits[:10] == [i % 3 == 0 for i in range(3, 13)]
            rr = client.read_discrete_inputs(0, count=5, device_id=unit)
            assert rr.bits[:5] == [False, True, False, True, False]
    finally:
        client.close()


def test_tcp_writes_reach_the_source(tcp_slave: tuple[int, asyncio.Server], source: FixedSource) -> None:
    port, _ = tcp_slave
    client = tcp_client(port)
    try:
        assert not client.write_register(7, 0xBEEF, device_id=1).isError()
        assert not client.write_registers(20, [1, 2, 3], device_id=2).isError()
        assert not client.write_coil(1, True, device_id=1).isError()
        assert not client.write_coils(10, [True, True, False, True], device_id=2).isError()
        assert client.read_holding_registers(7, count=1, device_id=1).registers == [0xBEEF]
    finally:
        client.close()
    assert source.tables[1]["holding"][7] == 0xBEEF
    assert source.tables[2]["holding"][20:23] == [1, 2, 3]
    assert source.tables[1]["coil"][1] is True
    assert source.tables[2]["coil"][10:14] == [True, True, False, True]


def test_tcp_exception_replies(tcp_slave: tuple[int, asyncio.Server], source: FixedSource) -> None:
    port, server = tcp_slave
    client = tcp_client(port)
    try:
        rr = client.read_holding_registers(98, count=5, device_id=1)  # past the end of the map
        assert rr.isError() and rr.exception_code == 2
        source.faults[(1, "input", 0)] = Reply(exception=6)
        rr = client.read_input_registers(0, count=2, device_id=1)
        assert rr.isError() and rr.exception_code == 6
    finally:
        client.close()
    # What pymodbus refuses to send, sent raw: bad counts, bad coil value, unknown function.
    cases = {
        1: (read_request(3, 0, 126), b"\x83\x03"),
        2: (read_request(3, 0, 0), b"\x83\x03"),
        3: (read_request(1, 0, 2001), b"\x81\x03"),
        4: (read_request(3, 0xFFFF, 2), b"\x83\x02"),
        5: (bytes.fromhex("0500011234"), b"\x85\x03"),
        6: (bytes.fromhex("1000000002030001"), b"\x90\x03"),  # byte count does not fit
        7: (b"\x41\x00\x00", b"\xc1\x01"),
    }
    with raw_tcp(port) as sock:
        for tid, (pdu, _) in cases.items():
            sock.sendall(mbap(tid, 1, pdu))
            got_tid, unit, reply = recv_mbap(sock)
            assert (got_tid, unit, reply) == (tid, 1, cases[tid][1])
    stats = slave_stats(server)
    assert stats.exceptions == len(cases) + 2


def test_tcp_pipelined_requests_come_back_in_order(
    tcp_slave: tuple[int, asyncio.Server], source: FixedSource
) -> None:
    port, _ = tcp_slave
    source.faults[(1, "holding", 0)] = Reply(delay=0.3)  # the first one is slow
    burst = (
        mbap(0x1001, 1, read_request(3, 0, 2))
        + mbap(0x1002, 2, read_request(4, 3, 1))
        + mbap(0x1003, 9, read_request(3, 0, 1))  # no such unit: no reply, order kept
        + mbap(0x1004, 1, read_request(1, 0, 3))
    )
    with raw_tcp(port, timeout=2.0) as sock:
        start = time.monotonic()
        sock.sendall(burst)
        replies = [recv_mbap(sock) for _ in range(3)]
        elapsed = time.monotonic() - start
    assert [r[0] for r in replies] == [0x1001, 0x1002, 0x1004]
    assert replies[0][2] == b"\x03\x04" + (1000).to_bytes(2, "big") + (1001).to_bytes(2, "big")
    assert replies[1][2] == b"\x04\x02" + (4003).to_bytes(2, "big")
    assert replies[2][2] == b"\x01\x01\x01"
    assert elapsed >= 0.3


def test_tcp_unknown_unit_and_silent_reply_time_out(
    tcp_slave: tuple[int, asyncio.Server], source: FixedSource
) -> None:
    port, server = tcp_slave
    source.faults[(1, "holding", 10)] = Reply(silent=True)
    client = tcp_client(port, timeout=0.3)
    try:
        with pytest.raises(ModbusIOException):
            client.read_holding_registers(0, count=1, device_id=9)
        with pytest.raises(ModbusIOException):
            client.read_holding_registers(10, count=1, device_id=1)
        # the connection still serves afterwards
        assert client.read_holding_registers(0, count=1, device_id=1).registers == [1000]
    finally:
        client.close()
    assert slave_stats(server).ignored == 2


def test_tcp_delay_holds_the_reply(tcp_slave: tuple[int, asyncio.Server], source: FixedSource) -> None:
    port, _ = tcp_slave
    source.faults[(2, "input", 0)] = Reply(delay=0.4)
    patient = tcp_client(port, timeout=2.0)
    hasty = tcp_client(port, timeout=0.15)
    try:
        start = time.monotonic()
        assert patient.read_input_registers(0, count=2, device_id=2).registers == [4000, 4001]
        assert time.monotonic() - start >= 0.4
        with pytest.raises(ModbusIOException):
            hasty.read_input_registers(0, count=2, device_id=2)
    finally:
        patient.close()
        hasty.close()


def test_tcp_drop_connection_closes_it(tcp_slave: tuple[int, asyncio.Server], source: FixedSource) -> None:
    port, _ = tcp_slave
    source.faults[(1, "holding", 50)] = Reply(drop_connection=True)
    with raw_tcp(port) as sock:
        sock.sendall(mbap(1, 1, read_request(3, 50, 1)))
        assert sock.recv(100) == b""  # EOF instead of a reply
    client = tcp_client(port, timeout=0.5)
    try:
        with pytest.raises(ModbusException):
            client.read_holding_registers(50, count=1, device_id=1)
    finally:
        client.close()


def test_tcp_corrupt_reply_is_a_frame_cut_short(
    tcp_slave: tuple[int, asyncio.Server], source: FixedSource
) -> None:
    port, _ = tcp_slave
    source.faults[(1, "holding", 0)] = Reply(corrupt=True)
    with raw_tcp(port, timeout=0.4) as sock:
        sock.sendall(mbap(5, 1, read_request(3, 0, 4)))
        tid, pid, length, unit = MBAP.unpack(recv_exact(sock, 7))
        assert (tid, pid, unit, length) == (5, 0, 1, 1 + 2 + 8)
        got = b""
        with pytest.raises(TimeoutError):
            while True:
                chunk = sock.recv(100)
                assert chunk
                got += chunk
        assert len(got) < length - 1
    client = tcp_client(port, timeout=0.3)
    try:
        with pytest.raises(ModbusIOException):
            client.read_holding_registers(0, count=4, device_id=1)
    finally:
        client.close()


def test_tcp_many_concurrent_async_clients(tcp_slave: tuple[int, asyncio.Server]) -> None:
    port, server = tcp_slave
    clients, reads = 20, 10

    async def poll(n: int) -> list[list[int]]:
        client = AsyncModbusTcpClient(HOST, port=port, timeout=2, retries=0)
        await client.connect()
        try:
            unit = 1 + n % 2
            out = []
            for i in range(reads):
                rr = await client.read_holding_registers(i, count=3, device_id=unit)
                out.append(rr.registers)
            return out
        finally:
            client.close()

    async def main() -> list[list[list[int]]]:
        return await asyncio.gather(*(poll(n) for n in range(clients)))

    results = asyncio.run(asyncio.wait_for(main(), 20))
    for n, regs in enumerate(results):
        unit = 1 + n % 2
        assert regs == [[unit * 1000 + i + k for k in range(3)] for i in range(reads)]
    stats = slave_stats(server)
    assert stats.requests == stats.replies == clients * reads
    assert stats.cpu_seconds >= 0 and 0 <= stats.cpu_share < 64
    stats.reset()
    assert stats.requests == 0


# --------------------------------------------------------------------------- RTU over TCP

def test_rtu_over_tcp_with_pymodbus_rtu_framer(
    rtu_tcp_slave: tuple[int, asyncio.Server], source: FixedSource
) -> None:
    port, server = rtu_tcp_slave
    client = tcp_client(port, framer=FramerType.RTU)
    try:
        assert client.read_holding_registers(2, count=3, device_id=1).registers == [1002, 1003, 1004]
        assert client.read_input_registers(0, count=1, device_id=2).registers == [4000]
        assert client.read_coils(0, count=4, device_id=2).bits[:4] == [True, False, False, True]
        assert not client.write_register(0, 77, device_id=2).isError()
        rr = client.read_holding_registers(99, count=2, device_id=1)
        assert rr.isError() and rr.exception_code == 2
    finally:
        client.close()
    assert source.tables[2]["holding"][0] == 77

    source.faults[(1, "holding", 40)] = Reply(corrupt=True)
    with raw_tcp(port, timeout=0.5) as sock:
        # noise, then a request split over two segments: resync and answer
        request = rtu(1, read_request(3, 4, 1))
        sock.sendall(b"\xff\x00\x13" + request[:3])
        time.sleep(0.05)
        sock.sendall(request[3:])
        assert recv_exact(sock, 7) == rtu(1, b"\x03\x02" + (1004).to_bytes(2, "big"))
        # a request with a bad CRC gets nothing
        sock.sendall(request[:-1] + bytes((request[-1] ^ 1,)))
        with pytest.raises(TimeoutError):
            sock.recv(100)
        # a corrupt reply: right length, wrong CRC
        sock.sendall(rtu(1, read_request(3, 40, 1)))
        reply = recv_exact(sock, 7)
        assert reply[:5] == bytes((1, 3, 2)) + (1040).to_bytes(2, "big")
        assert not crc_ok(reply)
    assert slave_stats(server).frame_errors >= 3


# --------------------------------------------------------------------------- RTU on a pty

def test_pty_shows_the_line_settings_the_client_set(
    pty_line: Callable[..., tuple[str, SerialSlave, int]],
) -> None:
    path, _, master = pty_line()
    with serial.Serial(path, 19200, parity="O", stopbits=2):
        assert read_client_line(master) == ClientLine(19200, "O", 2)
    with serial.Serial(path, 9600, parity="N"):
        # "none" and "even without INPCK" look the same: the pty driver clears PARENB
        assert read_client_line(master) == ClientLine(9600, None, 1)


def test_rtu_pty_two_units_share_the_line(
    pty_line: Callable[..., tuple[str, SerialSlave, int]], source: FixedSource
) -> None:
    path, slave, _ = pty_line(LineSettings(9600, "N"))
    client = serial_client(path, timeout=0.3)
    try:
        assert client.read_holding_registers(0, count=3, device_id=1).registers == [1000, 1001, 1002]
        assert client.read_input_registers(10, count=2, device_id=2).registers == [4010, 4011]
        assert client.read_discrete_inputs(0, count=3, device_id=2).bits[:3] == [False, True, False]
        assert not client.write_registers(30, [5, 6], device_id=2).isError()
        rr = client.read_holding_registers(100, count=1, device_id=1)
        assert rr.isError() and rr.exception_code == 2
        with pytest.raises(ModbusIOException):
            client.read_holding_registers(0, count=1, device_id=7)  # nobody at 7
    finally:
        client.close()
    assert source.tables[2]["holding"][30:32] == [5, 6]
    assert slave.stats.line_mismatches == 0


def test_rtu_pty_wrong_baud_gets_noise(
    pty_line: Callable[..., tuple[str, SerialSlave, int]],
) -> None:
    path, slave, _ = pty_line(LineSettings(9600, "N"))
    wrong = serial_client(path, baudrate=19200, timeout=0.3)
    try:
        with pytest.raises(ModbusIOException):
            wrong.read_holding_registers(0, count=2, device_id=1)
    finally:
        wrong.close()
    assert slave.stats.line_mismatches == 1
    right = serial_client(path, baudrate=9600, timeout=0.5)
    try:
        assert right.read_holding_registers(0, count=2, device_id=1).registers == [1000, 1001]
    finally:
        right.close()


def test_rtu_pty_sessions_start_clean(
    pty_line: Callable[..., tuple[str, SerialSlave, int]], source: FixedSource
) -> None:
    # A real port starts each open with an empty input buffer; a pty would keep what the
    # last client left unread (a late reply, the tail of noise) for the next one.
    path, slave, _ = pty_line()
    source.faults[(1, "holding", 0)] = Reply(delay=0.3)
    with serial.Serial(path, 9600):
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        os.write(fd, rtu(1, read_request(3, 0, 1)))  # slow to answer
        os.write(fd, rtu(2, read_request(3, 0, 1)))  # queued behind it
        time.sleep(0.1)
        os.close(fd)  # gives up before either reply
    time.sleep(0.4)  # both replies go out to nobody
    # A bare open, no pyserial: pyserial flushes its input on open and would hide leftovers.
    # The pty keeps the 9600 baud the last client set.
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        assert read_fd(fd, quiet=0.1) == b""
        os.write(fd, rtu(2, read_request(4, 1, 1)))
        assert read_fd(fd) == rtu(2, b"\x04\x02" + (4001).to_bytes(2, "big"))
    finally:
        os.close(fd)
    assert slave.stats.requests == 3


def test_rtu_pty_raw_frames(
    pty_line: Callable[..., tuple[str, SerialSlave, int]], source: FixedSource
) -> None:
    path, slave, _ = pty_line(LineSettings(19200, "N"))
    source.faults[(2, "holding", 60)] = Reply(corrupt=True)
    with serial.Serial(path, 19200, timeout=0):  # the line settings a real master would set
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            # noise before a request: resync and answer
            os.write(fd, b"\x00\xff\x42" + rtu(1, read_request(3, 1, 2)))
            assert read_fd(fd) == rtu(1, b"\x03\x04" + bytes.fromhex("03E903EA"))
            # bad CRC: silence
            bad = bytearray(rtu(2, read_request(3, 0, 1)))
            bad[-1] ^= 0x55
            os.write(fd, bytes(bad))
            assert read_fd(fd) == b""
            # broadcast write: every unit takes it, nobody answers
            os.write(fd, rtu(0, bytes.fromhex("0600050102")))
            assert read_fd(fd) == b""
            assert source.tables[1]["holding"][5] == source.tables[2]["holding"][5] == 0x0102
            # unknown function: exception 1
            os.write(fd, rtu(2, b"\x41\x07"))
            assert read_fd(fd) == rtu(2, b"\xc1\x01")
            # other unit: silence
            os.write(fd, rtu(3, read_request(3, 0, 1)))
            assert read_fd(fd) == b""
            # corrupt reply: bad CRC
            os.write(fd, rtu(2, read_request(3, 60, 1)))
            reply = read_fd(fd)
            assert reply[:5] == bytes((2, 3, 2)) + (2060).to_bytes(2, "big")
            assert len(reply) == 7 and not crc_ok(reply)
        finally:
            os.close(fd)
    assert slave.stats.frame_errors >= 3


def test_rtu_serial_on_a_port_path(loop_thread: LoopThread, source: FixedSource) -> None:
    # The slave side of a pty stands in for a real port here; the test drives the other end.
    master, path = open_pty_pair()
    slave = loop_thread.run(serve_rtu_serial(source, path, LineSettings(19200, "E", 2)))
    try:
        os.write(master, rtu(2, read_request(2, 0, 4)))
        assert read_fd(master) == rtu(2, b"\x02\x01\x0a")
        assert read_client_line(master).baudrate == 19200  # the port was set up as the device's
    finally:
        loop_thread.run(close_slave(slave))
        os.close(master)


# --------------------------------------------------------------------------- mbpoll (libmodbus)

VALUE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)", re.MULTILINE)


def mbpoll(*args: str) -> tuple[int, dict[int, int], str]:
    binary = require_binary("mbpoll")
    proc = subprocess.run(
        [binary, "-1", "-o", "0.5", *args],
        capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL,
    )
    out = proc.stdout + proc.stderr
    return proc.returncode, {int(r): int(v) for r, v in VALUE.findall(proc.stdout)}, out


def test_mbpoll_reads_over_tcp(tcp_slave: tuple[int, asyncio.Server]) -> None:
    port, _ = tcp_slave
    rc, values, out = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "4", "-t", "4", "-p", str(port), HOST)
    assert rc == 0, out
    assert values == {1: 1000, 2: 1001, 3: 1002, 4: 1003}  # mbpoll counts from 1 by default
    rc, values, out = mbpoll("-m", "tcp", "-a", "2", "-0", "-r", "3", "-c", "3", "-t", "0", "-p", str(port), HOST)
    assert rc == 0, out
    assert values == {3: 1, 4: 0, 5: 0}
    rc, values, out = mbpoll("-m", "tcp", "-a", "5", "-c", "1", "-p", str(port), HOST)
    assert rc != 0 and not values, out


def wait_detached(slave: SerialSlave, timeout: float = 2.0) -> None:
    """Wait until the slave has seen the last client close the line.

    It clears what that client left unread then; a client that opened the pty again before
    that (possible only on a starved machine) could still read the leftovers.
    """
    deadline = time.monotonic() + timeout
    while slave.client_attached and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not slave.client_attached


def test_mbpoll_over_a_pty_needs_the_right_baud_and_parity(
    pty_line: Callable[..., tuple[str, SerialSlave, int]],
) -> None:
    path, slave, _ = pty_line(LineSettings(9600, "N"))
    rc, values, out = mbpoll("-m", "rtu", "-b", "9600", "-P", "none", "-a", "2", "-0", "-r", "8", "-c", "2", "-t", "3", path)
    assert rc == 0, out
    assert values == {8: 4008, 9: 4009}
    for wrong in (("-b", "9600", "-P", "even"), ("-b", "9600", "-P", "odd"), ("-b", "19200", "-P", "none")):
        wait_detached(slave)
        rc, values, out = mbpoll("-m", "rtu", *wrong, "-a", "2", "-c", "2", path)
        assert rc != 0 and not values, (wrong, out)
    assert slave.stats.line_mismatches == 3
    wait_detached(slave)
    # the noise left unread by the failed sessions does not reach the next one
    rc, values, out = mbpoll("-m", "rtu", "-b", "9600", "-P", "none", "-a", "1", "-c", "1", path)
    assert rc == 0 and values == {1: 1000}, out
    assert slave.stats.requests == 5

    path, slave, _ = pty_line(LineSettings(19200, "E"))  # e.g. a radar gauge shipped at 8E1
    rc, values, out = mbpoll("-m", "rtu", "-b", "19200", "-P", "even", "-a", "1", "-c", "2", path)
    assert rc == 0, out
    assert values == {1: 1000, 2: 1001}
    wait_detached(slave)
    rc, values, out = mbpoll("-m", "rtu", "-b", "19200", "-P", "odd", "-a", "1", "-c", "2", path)
    assert rc != 0 and not values, out


def test_stats_object_can_be_shared(loop_thread: LoopThread, source: FixedSource) -> None:
    stats = SlaveStats()
    tcp = loop_thread.run(serve_tcp(source, HOST, 0, stats=stats))
    rtu_tcp = loop_thread.run(serve_rtu_over_tcp(source, HOST, 0, stats=stats))
    try:
        for server, framer in ((tcp, FramerType.SOCKET), (rtu_tcp, FramerType.RTU)):
            client = tcp_client(server.sockets[0].getsockname()[1], framer=framer)
            try:
                assert client.read_holding_registers(0, count=1, device_id=1).registers == [1000]
            finally:
                client.close()
        assert slave_stats(tcp) is slave_stats(rtu_tcp) is stats
        assert stats.requests == stats.replies == 2
    finally:
        loop_thread.run(close_slave(tcp))
        loop_thread.run(close_slave(rtu_tcp))
