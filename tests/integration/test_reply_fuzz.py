"""Random Modbus replies against the gateway's poller over a real socket (Hypothesis, issue 16).

A fake device (tests/support/fake_modbus.py, mode ``raw``) answers each read with a frame
Hypothesis makes up: random bytes; a frame built field by field (transaction id, protocol,
length, unit, function code, byte count, data, each right or wrong); or the right reply cut
short or with bytes after it. The daemon's own poller reads it (`DevicePoller.poll`, the
client of gateway/modbus/client.py), as in test_malformed_replies.py. Properties:

- no exception escapes the poller: every poll returns a batch;
- a batch is graded good only with the device's true values; anything else is NaN with quality
  comm_fail or device_fault, and the failure is counted under one of the documented kinds;
- the next polls, answered properly, read the true values: garbage costs one reading, never
  the connection's future (three chances, so a loaded machine answering one of them late is
  not taken for a broken connection).
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.wire import crc16
from gateway.acquire import DevicePoller
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.modbus.client import make_client
from tests.support.fake_modbus import FakeDevice, value_at
from tests.support.fuzz import examples
from tests.support.services import free_port
from tests.support.slave import Slave

PROFILES = Path(__file__).resolve().parents[1] / "support" / "profiles"
TIMEOUT = 0.3
KINDS = {"timeout", "truncated", "malformed", "connection_lost", "connect"}  # + exception_N

_maybe = st.one_of(st.none(), st.integers(0, 0xFFFF))
_byte = st.one_of(st.none(), st.integers(0, 255))
# (kind, fields): a recipe the fake turns into bytes once it knows the request
_recipes = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=300)),
    st.tuples(st.just("fields"), st.tuples(_maybe, _maybe, _maybe, _byte, _byte, _byte,
                                           st.binary(max_size=260))),
    st.tuples(st.just("cut"), st.integers(1, 20)),
    st.tuples(st.just("extra"), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("flip"), st.tuples(st.integers(0, 40), st.integers(1, 255))),
)


def _frame(recipe, rtu: bool, tid: int, unit: int, fc: int, good: bytes) -> bytes:
    kind, arg = recipe
    if kind == "bytes":
        return arg
    if kind == "cut":
        return good[:max(0, len(good) - arg)]
    if kind == "extra":
        return good + arg
    if kind == "flip":  # Modbus TCP has no checksum: only its header can be checked
        at, xor = arg
        out = bytearray(good)
        out[at % (len(out) if rtu else 9)] ^= xor
        return bytes(out)
    f_tid, f_proto, f_len, f_unit, f_fc, f_count, data = arg
    pdu = bytes([fc if f_fc is None else f_fc]) + \
        bytes([len(data) & 0xFF if f_count is None else f_count]) + data
    u = unit if f_unit is None else f_unit
    if rtu:
        body = bytes([u]) + pdu
        return body + crc16(body).to_bytes(2, "little")
    return struct.pack(">HHHB", tid if f_tid is None else f_tid, 0 if f_proto is None else f_proto,
                       (len(pdu) + 1 if f_len is None else f_len) & 0xFFFF, u) + pdu


def _site(tmp: Path, transport: str, port: int) -> Path:
    site = tmp / "site.toml"
    site.write_text(f"""
profiles_dir = "{PROFILES}"
[site]
code = "TEST"
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
retries = 0
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


TRUE = [value_at(1), (value_at(3) << 16) | value_at(4)]  # u16 at wire 1, int32 ABCD at 3-4


def _as_sent(frame: bytes, good: bytes, rtu: bool) -> list[int] | None:
    """The values a reply carries when it is a well-formed answer to the request (the right
    header and length, and on RTU a good CRC) with other data: Modbus cannot tell those from
    the truth, so the poller may take them. None for any other frame."""
    head = 3 if rtu else 9
    if len(frame) != len(good) or frame[:head] != good[:head]:
        return None
    if rtu and crc16(frame[:-2]).to_bytes(2, "little") != frame[-2:]:
        return None
    u16, _, i32 = struct.unpack(">HHi", frame[head:head + 8])  # the profile's int32 is signed
    return [u16, i32]


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize("transport", ["tcp", "rtu_over_tcp"])
def test_random_replies_never_escape_the_poller_nor_pass_for_values(tmp_path: Path,
                                                                    transport: str) -> None:
    port = free_port()
    cfg = load_site(_site(tmp_path, transport, port))
    rtu = transport == "rtu_over_tcp"
    fake = FakeDevice("127.0.0.1", port, mode="raw", rtu=rtu)

    @examples(15)
    @given(_recipes)
    def one(recipe) -> None:
        sent: list[tuple[bytes, bytes]] = []

        def raw(tid: int, unit: int, fc: int, address: int, count: int, good: bytes) -> bytes:
            sent.append((_frame(recipe, rtu, tid, unit, fc, good), good))
            return sent[-1][0]

        fake.raw = raw
        poller = DevicePoller(cfg.device("probe"), cfg)

        async def run():
            client = make_client(cfg.buses[0])
            try:
                fake.mode = "raw"
                first = await poller.poll(client, SimClock(0.0, 1.0))
                fake.mode = "good"
                for _ in range(3):
                    after = await poller.poll(client, SimClock(0.0, 1.0))
                    if (after.quality == 0).all():
                        break
                return first, after
            finally:
                client.close()

        first, after = asyncio.run(run())
        if (first.quality == 0).all():
            frame, good = sent[0]
            assert first.values.tolist() in (TRUE, _as_sent(frame, good, rtu)), (recipe, first)
        else:
            assert set(first.quality.tolist()) <= {4, 5} and np.isnan(first.values).all(), first
            assert set(poller.stats.errors) <= KINDS | {f"exception_{n}" for n in range(256)}, \
                dict(poller.stats.errors)
        assert (after.quality == 0).all() and after.values.tolist() == TRUE, (recipe, after)

    with Slave(fake.start):
        one()
