"""Replies that do not answer their request never become values: each kind of garbage a broken
device or TCP-to-RTU converter sends, from a fake device on a real socket, read through the
gateway's own poller (issue 21, issue 16).

pymodbus 3.16 alone took a wrong function code, too many or too few registers, an odd byte count
and bytes after the frame as data; each case here fails without the gateway's reply checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gateway.acquire import DevicePoller
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.modbus.client import make_client
from tests.support.fake_modbus import FakeDevice, value_at
from tests.support.services import free_port
from tests.support.slave import Slave

PROFILES = Path(__file__).resolve().parents[1] / "support" / "profiles"
TIMEOUT = 0.4

# mode of the fake -> (quality, error kind, reason in the log)
MALFORMED = {
    "wrong_fc": "wrong function code",
    "wrong_unit": "wrong unit id",
    "too_many": "wrong byte count",
    "too_few": "wrong byte count",
    "odd_count": "wrong byte count",
}
TCP = {
    **{mode: (5, "malformed", reason) for mode, reason in MALFORMED.items()},
    "wrong_tid": (5, "malformed", "wrong transaction id"),
    "zero_tid": (5, "malformed", "wrong transaction id"),
    "count_above_data": (5, "malformed", "byte count does not match the data"),
    "count_below_data": (5, "malformed", "byte count does not match the data"),
    "oversized": (5, "malformed", "oversized frame"),
    "trailing": (5, "malformed", "bytes after the frame"),
    "truncated": (5, "truncated", "reply cut short"),
    "drip": (5, "truncated", "reply cut short"),
    "reset": (5, "connection_lost", "connection_lost"),
    "exception": (4, "exception_4", "exception_4"),
    "silent": (5, "timeout", "no reply"),
}
# RTU frames over TCP (a serial device server): a frame is cut out of the stream by its byte
# count and must pass its CRC, so a byte count that disagrees with the data breaks the CRC
# (a timeout) or leaves the frame unfinished (truncated) rather than being "malformed"
RTU = {
    **{mode: (5, "malformed", reason) for mode, reason in MALFORMED.items()},
    "oversized": (5, "malformed", "wrong byte count"),
    "count_above_data": (5, "truncated", "reply cut short"),
    "count_below_data": (5, "timeout", "no reply"),
    "bad_crc": (5, "timeout", "no reply"),
    "truncated": (5, "truncated", "reply cut short"),
    "drip": (5, "truncated", "reply cut short"),
    "reset": (5, "connection_lost", "connection_lost"),
    "exception": (4, "exception_4", "exception_4"),
}
CASES = [("tcp", m) for m in TCP] + [("rtu_over_tcp", m) for m in RTU]


def _site(tmp: Path, transport: str, port: int, retries: int = 0) -> Path:
    site = tmp / "site.toml"
    site.write_text(f"""
profiles_dir = "{PROFILES}"

[site]
code = "TEST"
name = "malformed replies"
kind = "tailings_pond"

[gateway]
id = "gw-test"
state_dir = "{tmp / 'state'}"
listen = "off"

[[buses]]
name = "line"
transport = "{transport}"
host = "127.0.0.1"
port = {port}

[[devices]]
name = "probe"
bus = "line"
unit = 7
profile = "all_types"
period = "1min"
timeout = "{int(TIMEOUT * 1000)}ms"
retries = {retries}

[[points]]
name = "u16"
quantity = "generic"
device = "probe"
channel = "u16"

[[points]]
name = "i32"
quantity = "generic"
device = "probe"
channel = "int32_ABCD"
""", encoding="utf-8")
    return site


def _setup(tmp: Path, transport: str, retries: int = 0):
    port = free_port()
    cfg = load_site(_site(tmp, transport, port, retries))
    fake = FakeDevice("127.0.0.1", port, rtu=transport == "rtu_over_tcp")
    return cfg, DevicePoller(cfg.device("probe"), cfg), fake


def _polls(cfg, poller: DevicePoller, fake: FakeDevice, modes: list[str]) -> list:
    """One poll per mode, on one client (as the daemon keeps its bus client)."""

    async def run() -> list:
        client = make_client(cfg.buses[0])
        out = []
        try:
            for mode in modes:
                fake.mode = mode
                started = time.monotonic()
                out.append((await poller.poll(client, SimClock(0.0, 1.0)),
                            time.monotonic() - started))
        finally:
            client.close()
        return out

    return asyncio.run(run())


def _good(poller: DevicePoller, batch, offset: int = 0) -> None:
    assert (batch.quality == 0).all(), batch.quality
    # u16 at 40002 (wire address 1), int32 ABCD at 40004-40005 (wire addresses 3-4)
    want = [value_at(1, offset), (value_at(3, offset) << 16) | value_at(4, offset)]
    assert batch.values.tolist() == want


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("transport", "mode"), CASES, ids=[f"{m}-{t}" for t, m in CASES])
def test_each_malformed_reply_is_a_fault_never_a_value(tmp_path: Path, transport: str, mode: str,
                                                       caplog) -> None:
    quality, kind, reason = (TCP if transport == "tcp" else RTU)[mode]
    cfg, poller, fake = _setup(tmp_path, transport)
    caplog.set_level(logging.INFO)
    with Slave(fake.start):
        modes = [mode] * 3
        if not (mode == "drip" and transport == "rtu_over_tcp"):
            modes.append("good")  # (a device dripping on an RTU line holds the line meanwhile)
        results = _polls(cfg, poller, fake, modes)
    for batch, elapsed in results[:3]:
        assert (batch.quality == quality).all() and np.isnan(batch.values).all(), (mode, batch)
        # the garbage costs this device its reading within its timeout (and the quiet line after
        # it on RTU), never the 10+ s a dripped reply takes
        assert elapsed < 4 * TIMEOUT + 1.0, elapsed
    assert poller.stats.errors[kind] == 3, dict(poller.stats.errors)
    assert set(poller.stats.errors) == {kind}
    assert poller.stats.failed_polls == 3
    if len(results) == 4:
        _good(poller, results[3][0])  # the device is read again once it answers properly
        assert poller.stats.consecutive_failures == 0
    # one log line per new reason, never a traceback nor a record from pymodbus or asyncio
    failures = [r for r in caplog.records if getattr(r, "event", None) == "read_failed"]
    assert len(failures) == 1 and failures[0].kind == kind and failures[0].reason == reason
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR
                or r.name.split(".")[0] in ("pymodbus", "asyncio")], caplog.text


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "rtu_over_tcp"])
def test_a_late_reply_never_answers_the_next_request(tmp_path: Path, transport: str) -> None:
    """The device answers 0.6 s after a 0.4 s timeout; the next poll follows at once and the
    device's registers have changed meanwhile. That poll must read the new values, not take the
    late reply for its own (on TCP it is told by its transaction id, on RTU the line goes quiet
    after the timeout)."""
    cfg, poller, fake = _setup(tmp_path, transport)
    fake.delay = 0.6

    async def run() -> list:
        client = make_client(cfg.buses[0])
        try:
            fake.mode = "late"
            late = await poller.poll(client, SimClock(0.0, 1.0))
            fake.mode, fake.offset = "good", 100
            return [late, await poller.poll(client, SimClock(0.0, 1.0))]
        finally:
            client.close()

    with Slave(fake.start):
        late, fresh = asyncio.run(run())
    assert (late.quality == 5).all() and poller.stats.errors["timeout"] == 1
    _good(poller, fresh, offset=100)


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "rtu_over_tcp"])
def test_a_retry_recovers_from_one_malformed_reply(tmp_path: Path, transport: str) -> None:
    """Garbage once, then a good reply: the retry reads the device, the garbage is counted."""
    cfg, poller, fake = _setup(tmp_path, transport, retries=1)

    fake.script = ["wrong_fc"]

    async def run():
        client = make_client(cfg.buses[0])
        try:
            return await poller.poll(client, SimClock(0.0, 1.0))
        finally:
            client.close()

    with Slave(fake.start):
        batch = asyncio.run(run())
    _good(poller, batch)
    assert poller.stats.errors == {"malformed": 1} and poller.stats.failed_polls == 0


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_device_scan_skips_a_late_reply_as_the_daemon_does() -> None:
    """`minewatch device scan` talks through the daemon's own client: unit 7 answers 0.6 s after
    a 0.4 s timeout, while the probe of unit 8 waits for its reply. The late reply is known by
    its transaction id and skipped, so unit 8 is found rather than lost to a 'malformed reply'
    (what a scan that cleaned up after a timeout its own way used to report)."""
    port = free_port()
    fake = FakeDevice("127.0.0.1", port, mode="good")
    fake.delay = 0.6
    fake.script = ["late"]
    command = [sys.executable, "-m", "gateway.cli", "device", "scan", "--bus",
               f"tcp://127.0.0.1:{port}", "--units", "7-8", "--timeout", "0.4", "--json"]
    with Slave(fake.start):
        scan = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert scan.returncode == 0, scan.stderr
    assert [row["unit"] for row in json.loads(scan.stdout)["found"]] == [8]


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "rtu-over-tcp"])
def test_device_read_names_a_malformed_reply_instead_of_printing_it(transport: str) -> None:
    """`minewatch device read` is what a field engineer trusts at commissioning: garbage is
    named as such, never decoded into a table of plausible numbers."""
    port = free_port()
    fake = FakeDevice("127.0.0.1", port, mode="too_many", rtu=transport != "tcp")
    command = [sys.executable, "-m", "gateway.cli", "device", "read", "--bus",
               f"{transport}://127.0.0.1:{port}", "--unit", "7", "--address", "1", "--count", "2",
               "--timeout", "0.5", "--lang", "en"]
    with Slave(fake.start):
        bad = subprocess.run(command, capture_output=True, text=True, timeout=30)
        fake.mode = "good"
        good = subprocess.run(command + ["--json"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1, bad.stdout
    assert "unit 7 answers with a malformed reply: byte count 8" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert good.returncode == 0, good.stderr
    assert [row["raw"] for row in json.loads(good.stdout)] == [value_at(1), value_at(2)]
