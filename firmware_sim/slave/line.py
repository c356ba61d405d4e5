"""Serial line settings and the pty / termios plumbing of the simulated RS-485 line.

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

A real serial port is set to the device's settings instead (`configure_port`), and its UART does
the rest.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import termios
import tty
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "BAUD_OF_CODE",
    "CODE_OF_BAUD",
    "ClientLine",
    "LineSettings",
    "client_line",
    "configure_port",
    "flush_client_input",
    "is_pty_master",
    "open_pty_pair",
    "parity_fits",
    "read_client_line",
]


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
BAUD_OF_CODE = {
    getattr(termios, name): int(name[1:])
    for name in dir(termios)
    if name[:1] == "B" and name[1:].isdigit() and int(name[1:]) > 0
}
CODE_OF_BAUD = {baud: code for code, baud in BAUD_OF_CODE.items()}


def client_line(attrs: list) -> ClientLine:
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
    return ClientLine(BAUD_OF_CODE.get(speed), parity, 2 if cflag & termios.CSTOPB else 1)


def read_client_line(master_fd: int) -> ClientLine:
    """The line settings the client set on the slave side of the pty held as `master_fd`.

    Linux answers tcgetattr on a pty master with the slave's termios, so no extra fd is needed.
    """
    return client_line(termios.tcgetattr(master_fd))


def parity_fits(device: str, client: str | None) -> bool:
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


def is_pty_master(fd: int) -> bool:
    st = os.fstat(fd)
    # Every Unix98 pty master is the multiplexer device, char 5:2 (/dev/ptmx) on Linux.
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 5 and os.minor(st.st_rdev) == 2


_TIOCGPTPEER = 0x5441  # Linux >= 4.13: open the slave of a pty from its master
_TIOCGPTN = 0x80045430  # Linux: number of the pty, for /dev/pts/N


def flush_client_input(master: int) -> None:
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


def configure_port(fd: int, line: LineSettings) -> None:
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
    code = CODE_OF_BAUD.get(line.baudrate)
    if code is None:
        raise ValueError(f"baud rate {line.baudrate} has no termios constant")
    try:
        termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, code, code, cc])
    except termios.error:
        # The slave side of a pty (e.g. one end of a socat pair) cannot keep PARENB and glibc
        # reports that as EINVAL; it has no parity to set anyway.
        if not (line.parity != "N" and 136 <= os.major(os.fstat(fd).st_rdev) <= 143):
            raise
