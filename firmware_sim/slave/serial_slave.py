"""The simulated slave on a serial line: RTU on a real port or on the master side of a pty.

On a pty the client's own line settings are read on each request and a baud rate or parity that
differs from the device's gets noise back (`firmware_sim.slave.line` says what a pty can show);
a client that closes the line is noticed, and the next one starts with nothing stale to read, as
on a real port. `SerialSlave` is shaped like `asyncio.Server` so callers stop every kind of slave
the same way.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import termios

from firmware_sim.slave.core import Core, RegisterSource, SlaveStats
from firmware_sim.slave.line import (
    BAUD_OF_CODE,
    CODE_OF_BAUD,
    LineSettings,
    client_line,
    configure_port,
    flush_client_input,
    is_pty_master,
    parity_fits,
)
from firmware_sim.slave.rtu import RtuFraming
from firmware_sim.wire import garble

__all__ = ["SerialSlave", "serve_rtu_serial"]

logger = logging.getLogger(__name__)


# How often to look whether a client has opened the pty again (reads fail with EIO until then).
_PROBE_INTERVAL = 0.02


class _SerialSession(RtuFraming):
    __slots__ = (
        "fd", "buf", "gap", "gap_handle", "line", "pty", "loop", "probe_handle", "attached",
        "_speed_code",
    )

    def __init__(
        self, core: Core, fd: int, line: LineSettings, pty: bool, gap: float
    ) -> None:
        RtuFraming.__init__(self, core)
        self.fd = fd
        self.buf = bytearray()
        self.gap = gap
        self.gap_handle: asyncio.TimerHandle | None = None
        self.line = line
        self.pty = pty
        self.loop = asyncio.get_running_loop()
        self.probe_handle: asyncio.TimerHandle | None = None
        self.attached = True  # a client holds the line (until a read says otherwise)
        self._speed_code = CODE_OF_BAUD.get(line.baudrate)

    def start(self) -> None:
        self.loop.add_reader(self.fd, self.on_readable)

    def stop(self) -> None:
        self.loop.remove_reader(self.fd)
        for handle in (self.gap_handle, self.probe_handle):
            if handle is not None:
                handle.cancel()
        self.gap_handle = self.probe_handle = None
        RtuFraming.stop(self)

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
            client_baud = BAUD_OF_CODE.get(attrs[5])
            return client_baud / line.baudrate if client_baud else 1.0
        if not parity_fits(line.parity, client_line(attrs).parity):
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
                flush_client_input(self.fd)
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
            flush_client_input(self.fd)
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
        pty = is_pty_master(fd)
        if not pty:
            configure_port(fd, line)
    except BaseException:
        if own:
            os.close(fd)
        raise
    if gap is None:
        bits = 1 + line.bytesize + (line.parity != "N") + line.stopbits
        gap = max(0.05, 3.5 * bits / line.baudrate)
    core = Core(source, stats if stats is not None else SlaveStats())
    return SerialSlave(_SerialSession(core, fd, line, pty, gap), own)
