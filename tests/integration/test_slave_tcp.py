"""The simulator's Modbus TCP slave (`firmware_sim/slave/tcp.py`) against real clients over
loopback sockets: pymodbus (sync and async), mbpoll (libmodbus) and raw MBAP frames for what a
library hides (transaction ids, pipelining, cut-off frames). The slaves run in an event loop on a
background thread, so the blocking clients can run in the test itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from firmware_sim.slave import (
    Reply,
    SlaveStats,
    close_slave,
    serve_rtu_over_tcp,
    serve_tcp,
    slave_stats,
)
from firmware_sim.wire import MBAP
from tests.support.clients import (
    HOST,
    mbap,
    mbpoll,
    raw_tcp,
    read_request,
    recv_exact,
    recv_mbap,
    tcp_client,
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
def tcp_slave(loop_thread: LoopThread, source: FixedSource) -> Iterator[tuple[int, asyncio.Server]]:
    server = loop_thread.run(serve_tcp(source, HOST, 0))
    yield server.sockets[0].getsockname()[1], server
    loop_thread.run(close_slave(server))


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
