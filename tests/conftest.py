"""Shared test set-up: one numba cache folder for the whole run, real parts started on loopback.

Under CI=true a missing real part (Mosquitto, mbpoll, VictoriaMetrics) fails the test; on a
developer machine it is skipped with the reason, so `make test` says clearly what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# one cache for every process the tests start (gateway and simulator subprocesses inherit it)
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))

import pytest  # noqa: E402

from tests.support.services import Mosquitto, free_port, require_binary  # noqa: E402


@pytest.fixture
def mosquitto(tmp_path):
    binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
    broker = Mosquitto(binary, tmp_path / "mosquitto", free_port())
    broker.start()
    yield broker
    broker.stop()
