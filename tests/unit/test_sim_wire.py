"""The simulator's Modbus wire helpers (`firmware_sim/wire.py`): CRC-16, RTU request lengths,
bit packing and line noise, against a widely quoted reference frame."""

from __future__ import annotations

from firmware_sim.wire import (
    add_crc,
    crc16,
    crc_ok,
    find_crc_frame,
    garble,
    pack_bits,
    rtu_request_size,
    unpack_bits,
)
from tests.support.clients import rtu


def test_crc_and_rtu_framing_helpers_match_the_reference_frame() -> None:
    # A widely quoted reference frame: read 10 holding registers of unit 1, CRC C5 CD.
    frame = add_crc(bytes.fromhex("01030000000A"))
    assert frame == bytes.fromhex("01030000000AC5CD")
    assert crc16(bytes.fromhex("01030000000A")) == 0xCDC5
    assert crc_ok(frame)
    assert not crc_ok(frame[:-1] + b"\x00")
    assert rtu_request_size(frame) == 8
    fc16 = rtu(1, bytes.fromhex("10000A000204") + b"\x00\x01\x00\x02")
    assert rtu_request_size(fc16[:6]) == 0  # byte count not seen yet
    assert rtu_request_size(fc16) == len(fc16)
    assert rtu_request_size(rtu(1, b"\x41\x00")) == -1
    assert find_crc_frame(b"\x01\x41\x00" + crc16(b"\x01\x41\x00").to_bytes(2, "little") + b"xx") == 5
    assert unpack_bits(pack_bits([True, False, True] * 4), 12) == [True, False, True] * 4
    for ratio in (0.5, 1.0, 2.0):
        noise = garble(frame, ratio)
        assert len(noise) == round(len(frame) * ratio)
        assert not crc_ok(noise)
