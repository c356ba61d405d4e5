"""Clients of the simulator's slave for its tests: pymodbus, mbpoll (libmodbus) and raw frames
for what a library hides (transaction ids, pipelining, CRC, noise)."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import time

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.framer import FramerType

from firmware_sim.slave import SerialSlave
from firmware_sim.wire import MBAP, add_crc
from tests.support.services import require_binary

HOST = "127.0.0.1"


def tcp_client(port: int, timeout: float = 1.0, framer: FramerType = FramerType.SOCKET) -> ModbusTcpClient:
    client = ModbusTcpClient(HOST, port=port, timeout=timeout, retries=0, framer=framer)
    assert client.connect()
    return client


def serial_client(path: str, baudrate: int = 9600, parity: str = "N", timeout: float = 0.5) -> ModbusSerialClient:
    client = ModbusSerialClient(port=path, baudrate=baudrate, parity=parity, timeout=timeout, retries=0)
    assert client.connect()
    return client


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


VALUE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)", re.MULTILINE)


def mbpoll(*args: str) -> tuple[int, dict[int, int], str]:
    binary = require_binary("mbpoll")
    proc = subprocess.run(
        [binary, "-1", "-o", "0.5", *args],
        capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL,
    )
    out = proc.stdout + proc.stderr
    return proc.returncode, {int(r): int(v) for r, v in VALUE.findall(proc.stdout)}, out


def wait_detached(slave: SerialSlave, timeout: float = 2.0) -> None:
    """Wait until the slave has seen the last client close the line.

    It clears what that client left unread then; a client that opened the pty again before
    that (possible only on a starved machine) could still read the leftovers.
    """
    deadline = time.monotonic() + timeout
    while slave.client_attached and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not slave.client_attached
