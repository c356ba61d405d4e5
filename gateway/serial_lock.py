"""One opener per serial port: a lock file per port that says who holds it.

The `minewatch` CLI (scan, read, write on a laptop's RS-485 adapter) and the daemon must never
talk on one line at once: two masters on RS-485 garble each other's frames, and a commissioning
write could interleave with a poll. Each opener takes `LCK..<port>` in the lock folder with
`fcntl.flock` (released by the kernel when the process dies, so a crash never leaves a port
locked) and writes into it its pid, command and start time, in the UUCP layout (pid on the first
line, right-aligned in 10 characters) that minicom and ModemManager also read and write.

Lock folder: `$MINEWATCH_LOCK_DIR` if set, else `/run/lock` (or `/var/lock`) when writable, else
the caller's `fallback_dir`, else the system temporary folder. The CLI's ad-hoc commands (scan,
read, write) have no config and so no state folder: both sides must find the same folder, which
is why the systemd unit lists /run/lock among its writable paths. A port named through a symlink
(`/dev/serial/by-id/...`) locks the device it points to.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LockHolder", "SerialPortBusy", "SerialPortLock", "hold_bus_port", "lock_dir",
           "lock_path", "lock_serial_port"]

log = logging.getLogger("minewatch.serial_lock")

ENV_LOCK_DIR = "MINEWATCH_LOCK_DIR"
_SYSTEM_DIRS = (Path("/run/lock"), Path("/var/lock"))
_MARK = "minewatch"  # third line of our lock files: tells ours from a foreign UUCP lock


@dataclass(frozen=True)
class LockHolder:
    """Who holds a port, as its lock file says."""

    pid: int | None
    command: str
    since: str  # ISO 8601 UTC, "" if unknown
    host: str = ""
    ours: bool = False  # written by minewatch (else minicom, ModemManager, ...)

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "an unknown process"
        what = f" ({self.command})" if self.command else ""
        when = f" since {self.since}" if self.since else ""
        return f"{who}{what}{when}"


class SerialPortBusy(RuntimeError):
    """Another process holds the port."""

    def __init__(self, port: str, path: Path, holder: LockHolder | None):
        self.port = port
        self.path = path
        self.holder = holder
        who = holder.describe() if holder else "another process"
        super().__init__(f"serial port {port} is in use by {who} (lock {path})")


def lock_dir(fallback: Path | None = None) -> Path:
    """The folder for port locks (see the module docstring for the order)."""
    env = os.environ.get(ENV_LOCK_DIR)
    if env:
        return Path(env)
    for d in _SYSTEM_DIRS:
        if d.is_dir() and os.access(d, os.W_OK | os.X_OK):
            return d
    if fallback is not None:
        return Path(fallback)
    return Path(tempfile.gettempdir())


def lock_path(port: str, directory: Path) -> Path:
    """`LCK..ttyUSB0` for /dev/ttyUSB0 (symlinks resolved; /dev/pts/3 -> `LCK..pts_3`)."""
    real = os.path.realpath(port)
    name = real[len("/dev/"):] if real.startswith("/dev/") else real.lstrip("/")
    return Path(directory) / ("LCK.." + name.replace("/", "_"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True


def _read_holder(fd: int) -> LockHolder | None:
    try:
        data = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return None
    lines = data.splitlines()
    if not lines:
        return None
    try:
        pid: int | None = int(lines[0].strip())
    except ValueError:
        pid = None
    ours = len(lines) > 2 and lines[2].startswith(_MARK)
    fields = dict(x.split("=", 1) for x in lines[2].split()[1:] if "=" in x) if ours else {}
    return LockHolder(pid, lines[1].strip() if len(lines) > 1 else "", fields.get("since", ""),
                      fields.get("host", ""), ours)


def _default_command() -> str:
    """This process's command line, as a person would type it (`python -m gateway.cli run`
    shows as `minewatch run`)."""
    argv = sys.argv or ["python"]
    name = Path(argv[0]).name
    if name == "__main__.py" and Path(argv[0]).parent.parts[-2:] == ("gateway", "cli"):
        name = "minewatch"
    return " ".join([name, *argv[1:]])


class SerialPortLock:
    """The lock on one serial port; `acquire` raises `SerialPortBusy` naming the holder.

    Use as a context manager or call `release`. flock locks belong to an open file, so a second
    lock on the same port fails even inside one process.
    """

    def __init__(self, port: str, *, command: str | None = None, directory: Path | None = None,
                 fallback_dir: Path | None = None):
        self.port = port
        self.command = command if command is not None else _default_command()
        self.path = lock_path(port, directory if directory is not None else lock_dir(fallback_dir))
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> SerialPortLock:
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            writable = True
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except PermissionError:
                # a stale lock file of another user in a sticky folder: flock works read-only
                fd, writable = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                holder = _read_holder(fd)
                os.close(fd)
                raise SerialPortBusy(self.port, self.path, holder) from None
            # The holder before us may have removed the file between our open and our flock:
            # then we lock an orphan inode and must start again on the file now at the path.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            holder = _read_holder(fd)
            if (holder is not None and not holder.ours and holder.pid and holder.pid != os.getpid()
                    and _alive(holder.pid)):
                # minicom and friends lock by pid alone, without flock: honour a live one
                os.close(fd)
                raise SerialPortBusy(self.port, self.path, holder)
            if writable:
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                text = (f"{os.getpid():>10d}\n{self.command}\n"
                        f"{_MARK} since={since} host={socket.gethostname()} port={self.port}\n")
                os.ftruncate(fd, 0)
                os.pwrite(fd, text.encode(), 0)
            self._fd = fd
            return self

    def release(self) -> None:
        """Remove the lock file and let go (the unlink first, so the next opener finds a fresh
        file; one that opened the old file meanwhile notices and retries)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)
        os.close(fd)

    def holder(self) -> LockHolder | None:
        """What the lock file says now (for messages), without locking."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return _read_holder(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> SerialPortLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)


def lock_serial_port(port: str, *, command: str | None = None, directory: Path | None = None,
                     fallback_dir: Path | None = None) -> SerialPortLock:
    """Take the lock on `port` now, or raise `SerialPortBusy` naming who has it."""
    return SerialPortLock(port, command=command, directory=directory,
                          fallback_dir=fallback_dir).acquire()


async def hold_bus_port(bus, *, command: str | None = None, fallback_dir: Path | None = None,
                        retry: float = 5.0) -> SerialPortLock | None:
    """The daemon's side: the lock on an RTU bus's serial port (None for TCP buses).

    While someone else holds the port (an engineer commissioning with the CLI) it waits, logging
    the holder once, and retries every `retry` seconds. Meanwhile the bus is not polled: the
    heartbeat and `minewatch status` show its devices offline, and the log names the holder.
    """
    if getattr(bus, "transport", None) != "rtu" or not getattr(bus, "serial_port", None):
        return None
    told = None
    while True:
        try:
            return lock_serial_port(bus.serial_port, command=command, fallback_dir=fallback_dir)
        except SerialPortBusy as exc:
            if str(exc) != told:
                told = str(exc)
                log.warning("bus %s waits: %s", bus.name, exc,
                            extra={"event": "serial_port_busy", "bus": bus.name})
        await asyncio.sleep(retry)
