"""Giving back numba's LLVM pages once the detector kernels are loaded.

`import numba` maps LLVM (llvmlite's `libllvmlite.so`, 180 MB of code and tables), and its load
and the first kernels fault in about 100 MB of it: the kernel maps a window of pages around each
fault. They are clean pages of the file, shared with every process that maps it and reclaimable,
yet the gateway's RSS counts them, on a site computer where a three-point site should look as
small as it is. The daemon needs LLVM only to load or compile kernels, which it does before it
says it is ready (`gateway.detect`); a kernel call runs its own machine code and never touches
LLVM. So once the kernels are in, `release_llvm_pages` drops those pages from the process's page
tables (madvise MADV_DONTNEED): they stay in the page cache, and a later compile (a reload that
brings a new detector) faults back what it uses. A mapping of the library that holds a private
page (written at load: relocations) is left alone, since dropping it would lose the write.
The peak RSS (VmHWM) stays what the load made it; the benchmark says both.
"""

from __future__ import annotations

import ctypes
import logging
import re
from pathlib import Path

__all__ = ["release_llvm_pages"]

log = logging.getLogger("minewatch.memory")

_MADV_DONTNEED = 4
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")


def _llvm_mappings(smaps: str) -> list[tuple[int, int, int]]:
    """(start, end, resident kB) of each read-only mapping of libllvmlite with no private page."""
    out = []
    current: dict | None = None
    for line in smaps.splitlines():
        m = _HEADER.match(line)
        if m:
            start, end, perms, path = m.groups()
            current = ({"start": int(start, 16), "end": int(end, 16), "rss": 0, "private": 0}
                       if path.endswith("libllvmlite.so") and "w" not in perms else None)
            if current is not None:
                out.append(current)
            continue
        if current is None:
            continue
        key, _, rest = line.partition(":")
        if key == "Rss":
            current["rss"] = int(rest.split()[0])
        elif key in ("Anonymous", "Private_Dirty") and int(rest.split()[0]):
            current["private"] = 1
    return [(c["start"], c["end"], c["rss"]) for c in out if not c["private"] and c["rss"]]


def release_llvm_pages() -> int:
    """Drop the clean, read-only pages of numba's LLVM from this process; kB given back
    (0 where there is no /proc or no madvise: other systems keep them)."""
    try:
        smaps = Path("/proc/self/smaps").read_text()
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    freed = 0
    for start, end, rss in _llvm_mappings(smaps):
        if libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start),
                        _MADV_DONTNEED) == 0:
            freed += rss
    if freed:
        log.info("numba's LLVM pages given back: %d MB", freed // 1024,
                 extra={"event": "llvm_pages_released", "kb": freed})
    return freed
