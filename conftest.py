"""Set-up for every pytest run from this checkout, before any module under test is imported.

One numba cache folder for the whole run, the install's own (`<venv>/var/cache/minewatch-numba`,
as `make` and the CLI use; gateway/numba_cache.py): kernels compile once, at install, not per
test or per process, and never into the source tree. numba reads NUMBA_CACHE_DIR when it
is first imported, and `--doctest-modules` imports `detectors/` and `gateway/` modules while
collecting, before tests/conftest.py would run, so it is set here, at the root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# gateway and simulator subprocesses the tests start inherit it
os.environ.setdefault("NUMBA_CACHE_DIR",
                      str(Path(sys.prefix) / "var" / "cache" / "minewatch-numba"))
