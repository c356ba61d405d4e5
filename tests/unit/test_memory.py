"""Giving back numba's LLVM pages once the kernels are loaded (gateway/memory.py): the pages
leave the process, the kernels still compute the same, and numba can still compile after it."""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from detectors.threshold import ThresholdDetector, ThresholdParams
from gateway.memory import _llvm_mappings, release_llvm_pages


def _rss_file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


def _detector() -> ThresholdDetector:
    p = ThresholdParams.defaults(3)
    p.upper[:] = [1.0, 2.0, 3.0, 4.0]
    p.upper_restore[:] = [0.8, 1.8, 2.8, 3.8]
    return ThresholdDetector(p)


def test_llvm_pages_go_back_and_the_kernels_still_work() -> None:
    x = np.array([[0.5, 2.5, 4.5]] * 4)
    before = _detector()
    expected = [before.update(np.arange(3), float(k), x[k], np.ones(3, bool)).grade.tolist()
                for k in range(4)]
    det = _detector()
    det.update(np.arange(3), 0.0, x[0], np.ones(3, bool))  # loaded, as the daemon warms up

    @numba.njit
    def twice(a):
        return 2.0 * a.sum()

    assert twice(np.ones(4)) == 8.0  # a compile: LLVM's pages are resident (whatever ran before)
    rss = _rss_file_kb()
    assert release_llvm_pages() > 10_000  # kB
    assert _rss_file_kb() < rss - 10_000
    got = [expected[0]] + [det.update(np.arange(3), float(k), x[k], np.ones(3, bool)
                                      ).grade.tolist() for k in range(1, 4)]
    assert got == expected

    @numba.njit
    def thrice(a):
        return 3.0 * a.sum()

    assert thrice(np.ones(4)) == 12.0  # compiling again brings back what LLVM needs


def test_only_clean_read_only_mappings_of_llvm_are_dropped() -> None:
    smaps = """\
7f0000000000-7f0000100000 r--p 00000000 fd:00 1 /x/llvmlite/binding/libllvmlite.so
Rss:                 400 kB
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xp 00100000 fd:00 1 /x/llvmlite/binding/libllvmlite.so
Rss:                 800 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000200000-7f0000201000 r--p 00200000 fd:00 1 /x/llvmlite/binding/libllvmlite.so
Rss:                   4 kB
Private_Dirty:         4 kB
Anonymous:             4 kB
7f0000201000-7f0000202000 rw-p 00201000 fd:00 1 /x/llvmlite/binding/libllvmlite.so
Rss:                   4 kB
Anonymous:             0 kB
7f0000300000-7f0000400000 r-xp 00000000 fd:00 2 /usr/lib/libc.so.6
Rss:                 900 kB
Anonymous:             0 kB
"""
    assert _llvm_mappings(smaps) == [(0x7F0000000000, 0x7F0000100000, 400),
                                     (0x7F0000100000, 0x7F0000200000, 800)]
