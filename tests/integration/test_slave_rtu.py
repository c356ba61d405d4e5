"""The simulator's RTU slave (`firmware_sim/slave/rtu.py`, `line.py`, `serial_slave.py`) against
real clients: RTU frames over TCP as a serial device server passes them, and RTU on
pseudo-terminals standing in for RS-485 lines, with pymodbus, pyserial, mbpoll (libmodbus) and
raw frames (noise, bad CRC, broadcast, line settings). The slaves run in an event loop on a
background thread, so the blocking clients can run in the test itself.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator

import pytest
import serial
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from firmware_sim.slave import (
    ClientLine,
    LineSettings,
    Reply,
    SerialSlave,
    close_slave,
    open_pty_pair,
    read_client_line,
    serve_rtu_over_tcp,
    serve_rtu_serial,
    slave_stats,
)
from firmware_sim.wire import crc_ok
from tests.support.clients import (
    HOST,
    mbpoll,
    raw_tcp,
    read_fd,
    read_request,
    recv_exact,
    rtu,
    serial_client,
    tcp_client,
    wait_detached,
)
from tests.support.slave import FixedSource, LoopThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


@pytest.fixture
def source() -> FixedSource:
    return FixedSource()


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
