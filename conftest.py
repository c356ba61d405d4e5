"""Set-up for every pytest run from this checkout, before any module under test is imported.

Hypothesis runs under one of three settings profiles (tests/support/fuzz.py gives each property
its number of examples): `dev` by default, `ci` when CI=true (derandomised, so a CI run is
repeatable), `fuzz` for `make fuzz` (HYPOTHESIS_PROFILE=fuzz: many more examples, a fresh
random seed each run). None keeps an example database in the checkout.

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

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the test extras are not installed: nothing uses Hypothesis then
    pass
else:
    _QUIET = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", **_QUIET)
    settings.register_profile("ci", derandomize=True, **_QUIET)
    settings.register_profile("fuzz", max_examples=2500, **_QUIET)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                          or ("ci" if os.environ.get("CI") == "true" else "dev"))
