"""systemd integration: readiness and watchdog keep-alives over $NOTIFY_SOCKET (sd_notify).

With `Type=notify` and `WatchdogSec=` in the unit (config/systemd/minewatch.service), systemd
starts counting the gateway as up only after READY=1 and restarts it when the keep-alives stop,
i.e. when the main loop hangs. Without $NOTIFY_SOCKET (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

__all__ = ["SystemdNotifier"]


class SystemdNotifier:
    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        self._address = "\0" + address[1:] if address.startswith("@") else address
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        # ping at half the watchdog interval, as sd_watchdog_enabled(3) advises
        self._interval = usec / 2e6 if usec else None
        self._last = 0.0

    def _send(self, message: str) -> None:
        if self._sock is None:
            return
        # systemd gone or its socket full: nothing the gateway could do about it
        with contextlib.suppress(OSError):
            self._sock.sendto(message.encode(), self._address)

    def ready(self, status: str = "") -> None:
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def keep_alive(self) -> None:
        if self._interval is None:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._send("WATCHDOG=1")
            self._last = now

    def stopping(self) -> None:
        self._send("STOPPING=1")
