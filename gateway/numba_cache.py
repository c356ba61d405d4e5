"""Where the compiled detector kernels live, and compiling them all at install time.

The detectors are numba kernels: the first process that uses one compiles it (seconds each,
half a minute for a displacement point's set) and caches the machine code on disk. So the
install step compiles every kernel once (`minewatch compile`, run by `make venv` and
`make install-offline`) into the install's own cache, `<prefix>/var/cache/minewatch-numba`, and
every later process, the daemon, `replay` or the tests, starts warm.

numba only uses a cache folder it can write to, so a process that cannot write the install's
cache (the daemon as its own user under a read-only /opt) gets a folder of its own, seeded
with a copy of the install's kernels: it starts warm all the same. NUMBA_CACHE_DIR, when set,
wins over all of this. It must be chosen before numba is first imported.

`import_numba`, called once the folder is final (numba reads NUMBA_CACHE_DIR when it is
imported), imports numba without scipy: `import numba` imports scipy when it is installed
(to check its version), and so does numba's array library when the first kernel loads (to find
BLAS for `np.dot` and `np.linalg`); scipy then maps its BLAS into the process, 26 MB of a
three-point site's RSS for nothing, since no detector kernel calls linear algebra (a kernel that
did would fail to compile, saying that it needs scipy). scipy is installed beside
the gateway because river needs it (the HalfSpaceTrees baseline); a process that uses river
imports scipy later and gets it as usual.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["INSTALL_CACHE", "configure", "seed", "compile_all", "main", "import_numba"]

INSTALL_CACHE = Path(sys.prefix) / "var" / "cache" / "minewatch-numba"


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def seed(target: Path) -> None:
    """Copy the install's compiled kernels that `target` lacks (numba keys them by source path
    and time stamp, so a copy stays valid for the same install)."""
    if not INSTALL_CACHE.is_dir():
        return
    for src in INSTALL_CACHE.rglob("*"):
        if src.is_file():
            dst = target / src.relative_to(INSTALL_CACHE)
            if not dst.exists():
                try:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
                except OSError:
                    return  # a cold start is slower, never wrong


def configure(fallback: Path | None = None) -> Path:
    """Choose the cache folder and put it in NUMBA_CACHE_DIR (unless that is set): the install's
    own when this process can write it, else `fallback` (the daemon's state folder) or the
    user's cache folder, seeded from the install's."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    if _writable(INSTALL_CACHE):
        chosen = INSTALL_CACHE
    else:
        chosen = fallback or Path.home() / ".cache" / "minewatch-numba"
        if _writable(chosen):
            seed(chosen)
    os.environ["NUMBA_CACHE_DIR"] = str(chosen)
    return chosen


def import_numba() -> None:
    """Import numba with scipy out of sight, so that numba's version check does not load it."""
    if "numba" in sys.modules:
        return
    hidden = "scipy" not in sys.modules
    if hidden:
        sys.modules["scipy"] = None  # `import scipy` raises ImportError, which numba expects
    try:
        import numba  # noqa: F401
        import numba.np.arraymath  # noqa: F401  (its BLAS probe, with scipy out of sight)
    finally:
        if hidden and sys.modules.get("scipy", "") is None:
            del sys.modules["scipy"]


def compile_all() -> dict[str, float]:
    """Compile (or load) both kernels of every detector the gateway runs; seconds per detector."""
    from detectors.registry import DETECTORS, PER_POINT, detector_class

    took = {}
    for name in DETECTORS:
        if name not in PER_POINT:  # river's model is Python, nothing to compile
            continue
        started = time.perf_counter()
        detector_class(name).warm_up()
        took[name] = round(time.perf_counter() - started, 2)
    return took


def main(argv: list[str] | None = None) -> int:
    """`minewatch compile` / `python -m gateway.numba_cache`: fill the cache, say where."""
    where = configure()
    import_numba()
    started = time.perf_counter()
    took = compile_all()
    print(f"detector kernels ready in {where} ({time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{k} {v:g} s" for k, v in took.items()) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
