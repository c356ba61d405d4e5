"""Whether the gateway can write its state directory: disk full, read-only, and the reserve.

Every writer of state (the outbox with its alert and audit logs, the InfluxDB spool, the detector
checkpoint) reports failures and successes here instead of crashing. The first failure of an
episode is logged once, naming the file, its directory and the reason (disk full with the bytes
free, read-only, I/O error), and the recovery once; health, `/metrics` and the storage fault event
read `state`.

The reserve is a file of `reserve_bytes` written beside the outbox at start. When an alert cannot
be committed because the disk is full, the outbox deletes it and commits again, so alerts still
commit when something else (telemetry, the spool, a runaway log) has filled the disk. While it is
released or anything fails, the low-value writers (telemetry, the spool) pause so they do not eat
the room the alerts need. It is written again once the disk has twice its size free, and only
then is the directory "ok" again: no flapping at the edge of full.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["StorageGuard", "StorageError", "classify", "open_db", "numba_cache_dir"]

log = logging.getLogger("minewatch.storage")

_CHUNK = 64 * 1024
NUMBA_CACHE_ROOM = 32 * 1024 * 1024  # the kernels' cache is about 2 MB


class StorageError(RuntimeError):
    """A state file cannot even be opened (read): the message names it and why."""


def classify(exc: BaseException, directory: Path) -> tuple[str, str]:
    """(kind, reason for people) of a failed write: kind is full, read_only or error."""
    flags, free = _statvfs(directory)
    if flags is not None and flags & os.ST_RDONLY:
        return "read_only", "the file system is mounted read-only"
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name == "SQLITE_FULL" or (free is not None and free < _CHUNK):
            return "full", f"{exc} ({free} bytes free)" if free is not None else str(exc)
        if name.startswith("SQLITE_READONLY") or not os.access(directory, os.W_OK):
            return "read_only", f"not writable ({exc})"
        return "error", f"{exc} ({name})" if name else str(exc)
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "full", f"disk full ({free} bytes free)" if free is not None else "disk full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "read_only", exc.strerror or str(exc)
        return "error", exc.strerror or str(exc)
    return "error", str(exc)


def _statvfs(directory: Path) -> tuple[int | None, int | None]:
    try:
        st = os.statvfs(directory)
    except OSError:
        return None, None
    return st.f_flag, st.f_bavail * st.f_frsize


class StorageGuard:
    """The write health of one state directory (the files in it, and any configured elsewhere)."""

    def __init__(self, directory: Path, reserve_bytes: int = 0,
                 now: Callable[[], float] = time.time):
        self.directory = directory
        self.reserve_path = directory / "outbox.reserve"
        self.reserve_bytes = reserve_bytes
        self.now = now
        self.released = False  # the reserve was given up to commit alerts
        self.low = False  # less free space than the reserve: nearly full counts as full
        self.failing: dict[str, tuple[str, str]] = {}  # file -> (kind, reason)
        self.kind: str | None = None  # the open episode's kind: full, read_only, error
        self.reason = ""
        self.path: str | None = None  # the file whose failure opened the episode
        self.since: float | None = None
        self.episodes = 0
        self.failures = 0  # failed writes, all files, all episodes

    # -- what the writers call ---------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.kind or "ok"

    def paused(self) -> bool:
        """Low-value writers (telemetry, the spool) wait: something fails or the reserve is out."""
        return self.kind is not None

    def may_write(self, path: Path | str) -> bool:
        """Whether a low-value writer (the spool, the detector checkpoint) should write now:
        never while the reserve is out (that room is the alerts'), and while another file
        fails only if this one is the failing one (its write is the probe of recovery)."""
        return not self.released and (self.kind is None or str(path) in self.failing)

    def failed(self, path: Path | str, exc: BaseException) -> str:
        """A write to `path` failed; returns its kind. Logged once per episode (and on a change
        of kind), never per failure."""
        path = str(path)
        kind, reason = classify(exc, Path(path).parent)
        self.failures += 1
        self.failing[path] = (kind, reason)
        if self.kind != kind:
            self._open(kind, reason, path)
        return kind

    def wrote(self, path: Path | str) -> None:
        """Everything `path` had waiting is written now."""
        if self.failing.pop(str(path), None) is not None:
            self.check_recovered()

    def release_reserve(self, path: Path | str) -> bool:
        """Give the reserve's room to an alert commit that found the disk full. True if it freed
        room (the caller then commits again)."""
        try:
            self.reserve_path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("cannot release the reserve %s: %s", self.reserve_path,
                      exc.strerror or exc, extra={"event": "storage_reserve_failed"})
            return False
        self.released = True
        if self.kind is None:
            _, free = _statvfs(self.directory)
            self._open("full", f"disk full ({free} bytes free before the reserve was released)",
                       str(path))
        log.warning("released the %d-byte reserve %s so alerts still commit",
                    self.reserve_bytes, self.reserve_path,
                    extra={"event": "storage_reserve_released", "path": str(path)})
        return True

    def ensure_reserve(self) -> bool:
        """Write the reserve when it is missing and the disk has room for it twice over (the
        daemon calls this at start and while the reserve is released). True when in place."""
        if self.reserve_bytes <= 0:
            self.released = False
            return True
        try:
            if self.reserve_path.stat().st_size >= self.reserve_bytes:
                self.released = False
                return True
        except FileNotFoundError:
            pass
        except OSError:
            return False
        _, free = _statvfs(self.directory)
        if free is not None and free < 2 * self.reserve_bytes:
            if not self.released:
                self.released = True
                self._open("full", f"disk full ({free} bytes free, less than twice the "
                           f"{self.reserve_bytes}-byte reserve)", str(self.reserve_path))
            return False
        try:
            _write_zeros(self.reserve_path, self.reserve_bytes)
        except OSError as exc:
            self.reserve_path.unlink(missing_ok=True)
            if not self.released:
                self.released = True
                self.failed(self.reserve_path, exc)
            return False
        self.released = False
        self.check_recovered()
        return True

    def check_space(self) -> None:
        """Once a second: less free space than the reserve is full already (telemetry and the
        spool pause before the disk refuses anything); twice the reserve is room again."""
        if self.reserve_bytes <= 0:
            return
        free = self.free_bytes()
        if free is None:
            return
        if free < self.reserve_bytes:
            self.low = True
            if self.kind is None:
                self._open("full", f"{free} bytes free, less than the {self.reserve_bytes}-byte "
                           "reserve", str(self.directory))
        elif free >= 2 * self.reserve_bytes and self.low:
            self.low = False
            self.check_recovered()

    def check_recovered(self) -> None:
        if self.kind is None or self.failing or self.released or self.low:
            return
        took = self.now() - (self.since or self.now())
        log.warning("state directory %s is writable again after %.1f s (was %s: %s)",
                    self.directory, took, self.kind, self.reason,
                    extra={"event": "storage_recovered", "path": str(self.directory),
                           "kind": self.kind, "seconds": round(took, 1)})
        self.kind = None
        self.reason = ""
        self.path = None
        self.since = None

    def free_bytes(self) -> int | None:
        return _statvfs(self.directory)[1]

    def as_dict(self) -> dict:
        return {"path": str(self.directory), "state": self.state, "reason": self.reason or None,
                "file": self.path, "since": int(self.since * 1000) if self.since else None,
                "free_bytes": self.free_bytes(), "reserve_bytes": self.reserve_bytes,
                "reserve_released": self.released, "failures": self.failures}

    def _open(self, kind: str, reason: str, path: str) -> None:
        first = self.kind is None
        self.kind, self.reason, self.path = kind, reason, path
        if first:
            self.since = self.now()
            self.episodes += 1
        what = {"full": "is full", "read_only": "is read-only",
                "error": "cannot be written"}[kind]
        where = "" if path == str(self.directory) else f" (writing {path})"
        log.error("state directory %s %s: %s%s. Polling, detection and publishing go on; alerts "
                  "that cannot be committed are held in memory and sent directly, telemetry and "
                  "the InfluxDB spool pause", self.directory, what, reason, where,
                  extra={"event": "storage_failed", "path": path, "kind": kind,
                         "reason": reason})


def open_db(path: Path, synchronous: str, guard: StorageGuard | None = None
            ) -> tuple[sqlite3.Connection, bool]:
    """Connect to a WAL database; returns (connection, exclusive). A disk that cannot take the
    WAL's shared-memory file (full, read-only) falls back to exclusive locking, which keeps the
    WAL index in process memory, so the gateway starts and runs on a full disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = None
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        return db, False
    except sqlite3.OperationalError as exc:
        if db is not None:
            db.close()
        if guard is not None:
            guard.failed(path, exc)
        first = exc
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {first}; exclusively: {exc}") from None
    log.warning("%s opened with exclusive locking (its directory cannot take the shared-memory "
                "file: %s); other processes (`minewatch alerts list`) cannot read it until the "
                "gateway restarts", path, first,
                extra={"event": "storage_exclusive", "path": str(path)})
    return db, True


def _write_zeros(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        zeros = bytes(_CHUNK)
        left = size
        while left > 0:
            left -= os.write(fd, zeros[:min(left, _CHUNK)])
        os.fsync(fd)
    finally:
        os.close(fd)


def numba_cache_dir(wanted: Path) -> tuple[Path, str | None]:
    """Where numba may cache compiled kernels: `wanted`, unless its disk is full or read-only,
    where a cold start would die writing the cache (numba raises). Then a private folder in
    memory (/dev/shm), with what `wanted` already holds copied in, so a warm start stays warm.
    Returns (folder, why it moved or None)."""
    import atexit
    import shutil
    import tempfile

    probe = wanted
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    flags, free = _statvfs(probe)
    if free is None:
        return wanted, None
    if flags is not None and flags & os.ST_RDONLY:
        why = "its file system is read-only"
    elif not os.access(probe, os.W_OK):
        why = "it is not writable"
    elif free < NUMBA_CACHE_ROOM:
        why = f"its disk has {free} bytes free"
    else:
        return wanted, None
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="minewatch-numba-",
                                   dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    if wanted.is_dir():
        shutil.copytree(wanted, folder, dirs_exist_ok=True)
    return folder, f"numba cache {wanted} not used ({why}); compiled kernels go to {folder}"
