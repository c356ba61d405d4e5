"""How many examples a property-based test runs: its own bounded number in `make test`, many
times that in `make fuzz` (HYPOTHESIS_PROFILE=fuzz; the root conftest.py picks the profile,
which also decides derandomising: on under CI=true)."""

from __future__ import annotations

import os

from hypothesis import settings

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
FACTOR = int(os.environ.get("MINEWATCH_FUZZ_FACTOR", "25")) if FUZZ else 1


def examples(n: int) -> settings:
    """`@examples(200)`: 200 examples in `make test`, 200 x FACTOR in `make fuzz`."""
    return settings(max_examples=n * FACTOR)
