"""The reply checks as properties over random frames (Hypothesis): whatever bytes arrive, the
strict framer never raises into asyncio's callbacks and never hands over a reply that does not
answer the request; a correct reply always comes through with its exact values. The socket-level
behaviour (each kind from a fake device, the daemon beside it) is in tests/integration/."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.bit_message import ReadCoilsRequest
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from gateway.modbus.replies import MalformedReply, StrictRtuFramer, StrictSocketFramer
from gateway.modbus.replies import _Strict as Strict
from tests.support.fuzz import examples

SETTINGS = examples(400)
REQUESTS = {3: ReadHoldingRegistersRequest, 4: ReadInputRegistersRequest, 1: ReadCoilsRequest}


def _crc(frame: bytes) -> bytes:
    crc = 0xFFFF
    for b in frame:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def _framer(rtu: bool, fc: int, unit: int, tid: int, count: int) -> Strict:
    framer = (StrictRtuFramer if rtu else StrictSocketFramer)(DecodePDU(False))
    request = REQUESTS[fc](address=0, count=count, dev_id=unit, transaction_id=0 if rtu else tid)
    framer.buildFrame(request)
    return framer


def _data(fc: int, count: int, seed: int) -> bytes:
    n = (count + 7) // 8 if fc == 1 else 2 * count
    return bytes((seed + 31 * i) & 0xFF for i in range(n))


def _frame(rtu: bool, unit: int, tid: int, pdu: bytes) -> bytes:
    if rtu:
        return bytes([unit]) + pdu + _crc(bytes([unit]) + pdu)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def _answers(framer: Strict, pdu, fc: int, unit: int, tid: int, count: int, rtu: bool) -> bool:
    """A reply that answers the request: FC (or its exception), unit, tid, the count asked."""
    if pdu.dev_id != unit or (not rtu and pdu.transaction_id != tid):
        return False
    if pdu.function_code == fc | 0x80:
        return True
    if pdu.function_code != fc:
        return False
    return len(pdu.bits) == 8 * ((count + 7) // 8) if fc == 1 else len(pdu.registers) == count


requests = st.tuples(st.booleans(), st.sampled_from([1, 3, 4]), st.integers(1, 247),
                     st.integers(1, 65000), st.integers(1, 125))


@SETTINGS
@given(requests, st.binary(max_size=600))
def test_random_bytes_never_raise_and_never_pass_for_a_reply(request, data: bytes) -> None:
    rtu, fc, unit, tid, count = request
    framer = _framer(rtu, fc, unit, tid, count)
    used, pdu = framer.handleFrame(data, unit, tid)
    assert 0 <= used <= len(data)
    assert pdu is None or isinstance(pdu, MalformedReply) or _answers(framer, pdu, fc, unit, tid,
                                                                      count, rtu)


@SETTINGS
@given(requests, st.integers(0, 255), st.integers(0, 12), st.integers(0, 255))
def test_a_reply_with_one_header_byte_changed_is_never_taken(request, seed: int, position: int,
                                                            value: int) -> None:
    """Unit id, function code, byte count and (TCP) the MBAP header: change any one byte and the
    reply is refused or waited for, never decoded as the answer (on RTU the CRC is recomputed,
    as a broken converter would)."""
    rtu, fc, unit, tid, count = request
    if fc == 1:
        count = min(count, 120)
    pdu = bytes([fc, len(_data(fc, count, seed))]) + _data(fc, count, seed)
    good = bytearray(_frame(rtu, unit, tid, pdu))
    header = 3 if rtu else 9  # unit, FC, byte count; or MBAP (7), FC, byte count
    position %= header
    if good[position] == value:
        return
    good[position] = value
    bad = bytes(good[:-2]) + _crc(bytes(good[:-2])) if rtu else bytes(good)
    framer = _framer(rtu, fc, unit, tid, count)
    _, got = framer.handleFrame(bad, unit, tid)
    if rtu and position == 1 and value == fc | 0x80:
        return  # an exception reply of the right length may follow by chance: still no data
    assert got is None or isinstance(got, MalformedReply), (bad.hex(), got)


@SETTINGS
@given(requests, st.integers(0, 255), st.integers(1, 8))
def test_a_correct_reply_comes_through_whole_in_any_pieces(request, seed: int, pieces: int) -> None:
    rtu, fc, unit, tid, count = request
    data = _data(fc, count, seed)
    frame = _frame(rtu, unit, tid, bytes([fc, len(data)]) + data)
    framer = _framer(rtu, fc, unit, tid, count)
    buffer, pdu = b"", None
    step = max(1, len(frame) // pieces)
    for i in range(0, len(frame), step):
        buffer += frame[i:i + step]
        used, pdu = framer.handleFrame(buffer, unit, tid)
        buffer = buffer[used:]
        if pdu is not None:
            break
    assert pdu is not None and not isinstance(pdu, MalformedReply), pdu
    assert _answers(framer, pdu, fc, unit, tid, count, rtu)
    if fc == 1:
        bits = [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
        assert [int(b) for b in pdu.bits[:count]] == bits
    else:
        assert list(pdu.registers) == list(struct.unpack(f">{count}H", data))


@SETTINGS
@given(requests, st.integers(1, 125), st.integers(0, 255))
def test_a_well_formed_reply_to_another_count_is_refused(request, other: int, seed: int) -> None:
    """Consistent in itself (byte count, length and CRC agree) but for `other` registers or
    bits: a reply to some other request, never data for this one."""
    rtu, fc, unit, tid, count = request
    if (other + 7) // 8 == (count + 7) // 8 if fc == 1 else other == count:
        return
    data = _data(fc, other, seed)
    framer = _framer(rtu, fc, unit, tid, count)
    _, got = framer.handleFrame(_frame(rtu, unit, tid, bytes([fc, len(data)]) + data), unit, tid)
    assert isinstance(got, MalformedReply) and got.reason == "wrong byte count", got
