"""gateway/modbus/encode.py is the decoder's inverse: every numeric type in every word order
goes through encode and back unchanged, both ways, so `minewatch device write` puts on the wire
exactly what `device read` and the daemon read back."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.modbus.decode import NUMERIC_TYPES, decode_words
from gateway.modbus.encode import ENCODABLE_TYPES, encode_value, encode_words
from gateway.profiles import WORD_ORDERS

WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
         "uint64": 4, "float64": 4}
RANGE = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
         "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
         "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1)}
INTEGERS = sorted(RANGE)
FLOATS = ("float32", "float64")


def test_every_decoded_type_can_be_encoded() -> None:
    assert set(ENCODABLE_TYPES) == set(NUMERIC_TYPES)


def decoded(words: list[int], dtype: str, order: str) -> float:
    return float(decode_words([words], dtype, order)[0])


@pytest.mark.parametrize("dtype,value", [("int16", "-1234"), ("uint16", "0xBEEF"),
                                         ("int32", "-123456789"), ("uint32", "4000000000"),
                                         ("float32", "1255.125"), ("float64", "-0.001"),
                                         ("int64", "-9000000000"), ("uint64", "18000000000")])
@pytest.mark.parametrize("order", WORD_ORDERS)
def test_write_encoding_is_the_decoders_inverse(dtype: str, value: str, order: str) -> None:
    words = encode_value(value, dtype, order)
    expected = float(value) if dtype.startswith("float") else int(value, 0)
    assert len(words) == WIDTH[dtype]
    assert decoded(words, dtype, order) == pytest.approx(expected)


@pytest.mark.parametrize("order", WORD_ORDERS)
@pytest.mark.parametrize("dtype", INTEGERS)
def test_integer_extremes_round_trip(dtype: str, order: str) -> None:
    lo, hi = RANGE[dtype]
    for number in (lo, hi, 0, 1, lo + 1, hi - 1):
        words = encode_words(number, dtype, order)
        assert decoded(words, dtype, order) == float(number), (number, words)
        if WIDTH[dtype] < 4:  # 64-bit extremes do not fit the decoder's float64 exactly
            assert encode_words(int(decoded(words, dtype, order)), dtype, order) == words


@given(data=st.data())
def test_integers_round_trip_in_every_order(data) -> None:
    dtype = data.draw(st.sampled_from(INTEGERS))
    order = data.draw(st.sampled_from(WORD_ORDERS))
    lo, hi = RANGE[dtype]
    if WIDTH[dtype] == 4:  # the decoder gives float64: exact up to 2**53
        lo, hi = max(lo, -(2**53)), min(hi, 2**53)
    number = data.draw(st.integers(lo, hi))
    words = encode_words(number, dtype, order)
    assert all(0 <= w <= 0xFFFF for w in words) and len(words) == WIDTH[dtype]
    assert decoded(words, dtype, order) == number


@given(data=st.data())
def test_floats_round_trip_in_every_order(data) -> None:
    dtype = data.draw(st.sampled_from(FLOATS))
    order = data.draw(st.sampled_from(WORD_ORDERS))
    number = data.draw(st.floats(allow_nan=False, width=32 if dtype == "float32" else 64))
    words = encode_words(number, dtype, order)
    assert decoded(words, dtype, order) == number


@given(data=st.data())
def test_any_register_words_decode_and_encode_back(data) -> None:
    """The other way round: what a device holds, decoded and encoded, is the same words (NaN
    aside, whose payload a float may not keep)."""
    dtype = data.draw(st.sampled_from(NUMERIC_TYPES))
    order = data.draw(st.sampled_from(WORD_ORDERS))
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=WIDTH[dtype],
                               max_size=WIDTH[dtype]))
    value = decoded(words, dtype, order)
    if math.isnan(value):
        return
    if dtype in FLOATS:
        number: int | float = value
    else:
        if WIDTH[dtype] == 4 and abs(value) > 2**53:
            return  # float64 cannot hold it exactly
        number = int(value)
    assert encode_words(number, dtype, order) == words


def test_what_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_value("70000", "uint16")
    with pytest.raises(ValueError):
        encode_value("-1", "uint32")
    with pytest.raises(ValueError):
        encode_value("1.5", "int16")
    with pytest.raises(ValueError):
        encode_value("twelve", "float32")
    with pytest.raises(ValueError):
        encode_words(1, "string")
    with pytest.raises(ValueError):
        encode_words(1, "int16", "ABDC")


def test_float32_is_the_ieee_754_single() -> None:
    assert encode_words(1255.125, "float32") == [0x449C, 0xE400]
    assert struct.unpack(">f", bytes.fromhex("449ce400"))[0] == 1255.125
