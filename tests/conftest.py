"""Shared test fixtures: real parts started on loopback (the numba cache folder is set by the
root conftest.py).

Under CI=true a missing real part (Mosquitto, mbpoll, VictoriaMetrics) fails the test; on a
developer machine it is skipped with the reason, so `make test` says clearly what is missing.
"""

from __future__ import annotations

import pytest

from tests.support.services import Mosquitto, free_port, require_binary


@pytest.fixture
def mosquitto(tmp_path):
    binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
    broker = Mosquitto(binary, tmp_path / "mosquitto", free_port())
    broker.start()
    yield broker
    broker.stop()
