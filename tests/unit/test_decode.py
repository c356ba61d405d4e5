"""Decoding vectors of docs/modbus.md and docs/requirements.md R10, and the simulator's encoder
agrees with the decoder."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.encode import encode_bits, encode_string, encode_value
from gateway.modbus.decode import (
    TYPE_CODES,
    DecodeTable,
    DeviceDecoder,
    decode,
    decode_all_orders,
    decode_device,
    decode_raw,
    decode_string,
    decode_words,
)
from gateway.modbus.planner import ReadRequest, plan_reads
from gateway.profiles import Register, load_profile

ROOT = Path(__file__).resolve().parent.parent.parent
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
NUMERIC = ("int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64")
WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
         "uint64": 4, "float64": 4, "bit": 1}


def reg(name: str, address: int, type_: str = "uint16", order: str = "ABCD", **kw) -> Register:
    count = kw.pop("count", WIDTH.get(type_, 1))
    return Register(name=name, table=kw.pop("table", "holding"), address=address,
                    wire_address=address, type=type_, count=count, word_order=order, **kw)


def one_block(registers: list[Register]) -> DecodeTable:
    (request,) = plan_reads(registers, max_gap=125)
    return DecodeTable.from_request(request)


def decode_block(registers: list[Register], words: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(values, ok) in the order of `registers` from one reply holding them all."""
    table = one_block(registers)
    values, ok = decode(table, np.array(words, dtype=np.uint16))
    pos = [table.registers.index(r) for r in registers]
    return values[pos], ok[pos]


def words_from_bytes(data: bytes, order: str) -> list[int]:
    """Register words of big-endian `data` in `order`, spelled out from the letters: the bytes
    ABCD(EFGH) are regrouped into words in the letter order the name gives."""
    if order == "ABCD":
        seq = data
    elif order == "CDAB":  # words reversed
        seq = b"".join(data[i:i + 2] for i in reversed(range(0, len(data), 2)))
    elif order == "BADC":  # bytes swapped inside each word
        seq = b"".join(data[i:i + 2][::-1] for i in range(0, len(data), 2))
    else:  # DCBA: everything reversed
        seq = data[::-1]
    return [int.from_bytes(seq[i:i + 2], "big") for i in range(0, len(seq), 2)]


# docs/modbus.md#word-and-byte-order: 123456.0 = 0x47F12000, A=0x47 B=0xF1 C=0x20 D=0x00, in the four orders
FLOAT_123456 = {"ABCD": [0x47F1, 0x2000], "CDAB": [0x2000, 0x47F1],
                "BADC": [0xF147, 0x0020], "DCBA": [0x0020, 0xF147]}


@pytest.mark.parametrize("order", ORDERS)
def test_float32_123456_vector_in_every_word_order(order: str) -> None:
    data = struct.pack(">f", 123456.0)
    assert data == bytes.fromhex("47F12000")
    assert words_from_bytes(data, order) == FLOAT_123456[order]  # the table in docs/modbus.md#word-and-byte-order
    values, ok = decode_block([reg("x", 0, "float32", order)], FLOAT_123456[order])
    assert values[0] == 123456.0 and ok[0]
    assert decode_words([FLOAT_123456[order]], "float32", order)[0] == 123456.0
    assert encode_value(123456.0, reg("x", 0, "float32", order)) == FLOAT_123456[order]


# (type, value, its big-endian bytes): sign, high-word and 64-bit cases that a wrong swap breaks
VECTORS = [
    ("int32", -2, "FFFFFFFE"), ("int32", 0x12345678, "12345678"),
    ("uint32", 0x89ABCDEF, "89ABCDEF"), ("int64", -2, "FFFFFFFFFFFFFFFE"),
    # eight distinct bytes, and few enough significant bits to be exact in a float64
    ("int64", 0x0102030405060780, "0102030405060780"),
    ("uint64", 0x8102030405068000, "8102030405068000"),
    ("float64", 1.5, "3FF8000000000000"), ("float64", -123456.125, "C0FE240200000000"),
]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("type_", "value", "hex_"), VECTORS)
def test_wide_integer_and_double_vectors(type_: str, value: float, hex_: str, order: str) -> None:
    data = bytes.fromhex(hex_)
    fmt = {"int32": ">i", "uint32": ">I", "int64": ">q", "uint64": ">Q", "float64": ">d"}[type_]
    assert struct.unpack(fmt, data)[0] == value  # the vector itself is right
    words = words_from_bytes(data, order)
    r = reg("x", 0, type_, order)
    assert encode_value(float(value), r) == words
    values, ok = decode_block([r], words)
    assert values[0] == float(value) and ok[0]


def test_qdy30a_signed_value_with_decimal_places_register_in_the_same_block() -> None:
    # docs/requirements.md R10: 0x0003 decimal places = 2, 0x0004 value int16 0xFFF6 (-10) -> -0.10
    decimals = reg("decimals", 3)
    level = reg("level", 4, "int16", decimals_register="decimals")
    values, ok = decode_block([decimals, level], [2, 0xFFF6])
    assert values[1] == pytest.approx(-0.10) and ok.all()
    assert values[0] == 2.0  # the decimals register is a value of its own too


def test_decimal_places_register_read_in_another_block_of_the_poll() -> None:
    decimals = reg("decimals", 3)
    level = reg("level", 60, "int16", decimals_register="decimals", offset=1.0)
    plan = plan_reads([level], max_gap=0, profile_registers=[decimals, level])
    assert [q.address for q in plan] == [3, 60]  # added by the planner, in its own request
    replies = [np.array([2], np.uint16), np.array([0xFFF6], np.uint16)]
    decoder = DeviceDecoder(plan)
    values, ok = decoder.decode(replies)
    i = decoder.register_index["level"]
    assert values[i] == pytest.approx(-0.10 + 1.0) and ok.all()
    # the same from tables, and from one block on its own with the decimals passed by name
    tables = [DecodeTable.from_request(q) for q in plan]
    assert decode_device(tables, replies)[0][i] == values[i]
    alone, alone_ok = decode(tables[1], replies[1], decimals={"decimals": 2})
    assert alone[0] == pytest.approx(0.9) and alone_ok[0]
    unresolved, unresolved_ok = decode(tables[1], replies[1])
    assert np.isnan(unresolved[0]) and not unresolved_ok[0]


def test_bad_or_missing_decimal_places_make_the_value_not_ok() -> None:
    decimals = reg("decimals", 3)
    level = reg("level", 4, "int16", decimals_register="decimals")
    values, ok = decode_block([decimals, level], [0xFFFF, 0xFFF6])  # 65535 decimal places
    assert ok[0] and not ok[1] and np.isnan(values[1])
    # a plan without the decimals register (built by hand): never a silently unscaled value
    lonely = ReadRequest("holding", 3, 4, 1, ((level, 0),))
    values, ok = DeviceDecoder([lonely]).decode([np.array([0xFFF6], np.uint16)])
    assert not ok[0] and np.isnan(values[0])


def test_rain_gauge_and_vibrating_wire_frequency_vectors() -> None:
    rain = reg("rain", 0, scale=0.1)
    freq = reg("freq", 1, scale=0.1)
    values, ok = decode_block([rain, freq], [0x05A1, 0x3119])
    assert values[0] == pytest.approx(144.1)  # 0x05A1 / 10 mm
    assert values[1] == pytest.approx(1256.9)  # 0x3119 = 12569 x 0.1 Hz
    assert ok.all()


def test_vw_logger_profile_block_decodes_frequencies_and_temperatures() -> None:
    prof = load_profile(ROOT / "config" / "profiles" / "vw_logger_16ch.toml")
    plan = plan_reads(prof.registers, max_read=prof.max_read)
    reply = np.zeros(32, np.uint16)
    reply[0] = 0x3119  # freq_ch1
    reply[16] = np.uint16(-25 & 0xFFFF)  # temp_ch1 = -2.5 degC, int16
    decoder = DeviceDecoder(plan)
    values, ok = decoder.decode([reply])
    assert values[decoder.register_index["freq_ch1"]] == pytest.approx(1256.9)
    assert values[decoder.register_index["freq_ch2"]] == 0.0  # channel not connected
    assert values[decoder.register_index["temp_ch1"]] == pytest.approx(-2.5)
    assert ok.all() and len(values) == 32


def test_decode_table_groups_fields_by_type_and_order() -> None:
    regs = [reg("a", 0, "uint16"), reg("b", 1, "float32", "CDAB"), reg("c", 3, "float32", "CDAB"),
            reg("d", 5, "int16", "DCBA"), reg("e", 6, "bit", bit=4), reg("s", 7, "string", count=2)]
    t = one_block(regs)
    assert t.word_offset.tolist() == [0, 1, 3, 5, 6, 7]
    assert [TYPE_CODES[c] for c in t.type_code] == ["uint16", "float32", "float32", "int16",
                                                     "bit", "string"]
    assert t.word_swap.tolist() == [False, True, True, False, False, False]  # none on one word
    assert t.byte_swap.tolist() == [False, False, False, True, False, False]
    assert t.bit.tolist() == [-1, -1, -1, -1, 4, -1]
    assert len(t._groups) == 3  # uint16, float32 CDAB (both floats in one gather), int16 DCBA
    words = [7, *reversed(FLOAT_123456["ABCD"]), *FLOAT_123456["CDAB"], 0xFEFF, 0x0010,
             0x4142, 0x4300]
    values, ok = decode(t, words)
    assert values[:5].tolist() == [7.0, 123456.0, 123456.0, -2.0, 1.0]
    assert ok.tolist() == [True] * 5 + [False]  # a string is not a number
    assert decode_string(words[7:9]) == "ABC"


def test_bit_fields_of_registers_and_of_bit_tables() -> None:
    status = [reg(f"b{k}", 0, "bit", bit=k) for k in (0, 1, 3, 15)]
    values, ok = decode_block(status, [0b1000_0000_0000_1001])
    assert values.tolist() == [1.0, 0.0, 1.0, 1.0] and ok.all()
    # a byte-swapping device swaps its status word: bit 3 arrives in the high byte
    swapped = reg("b3", 0, "bit", "BADC", bit=3)
    assert decode_block([swapped], [0x0800])[0][0] == 1.0
    coils = [reg(f"c{a}", a, "bit", table="coil") for a in (0, 2, 5)]
    table = one_block(coils)
    reply = np.array([True, False, False, False, False, True])
    values, ok = decode(table, reply)
    assert values.tolist() == [1.0, 0.0, 1.0] and ok.all()
    assert decode(table, [1, 0, 1, 0, 0, 0])[0].tolist() == [1.0, 1.0, 0.0]  # 0/1 ints too


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinite_floats_are_not_ok(bad: float) -> None:
    f32, f64 = reg("f", 0, "float32"), reg("d", 2, "float64", "DCBA")
    words = (list(struct.unpack(">HH", struct.pack(">f", bad)))
             + words_from_bytes(struct.pack(">d", bad), "DCBA"))
    values, ok = decode_block([f32, f64, reg("u", 6)], [*words, 5])
    assert ok.tolist() == [False, False, True] and np.isnan(values[:2]).all()


def test_short_reply_marks_only_missing_fields() -> None:
    t = one_block([reg("a", 0), reg("f", 1, "float32"), reg("b", 3, "bit", bit=0)])
    raw, ok = decode_raw(t, [9, 0x47F1])  # 2 of the 4 words
    assert raw[0] == 9.0 and ok.tolist() == [True, False, False]


def test_device_decoder_checks_the_number_of_replies() -> None:
    plan = plan_reads([reg("a", 0), reg("b", 10)])
    with pytest.raises(ValueError, match="1 replies for a plan of 2 requests"):
        DeviceDecoder(plan).decode([np.array([1], np.uint16)])


def test_strings() -> None:
    assert decode_string([0x4D57, 0x2D31, 0x0000]) == "MW-1"
    assert decode_string([0x574D, 0x312D, 0x0000], "BADC") == "MW-1"
    assert decode_string([0x2020, 0x4142, 0x2020, 0x0000]) == "AB"
    r = reg("model", 0, "string", "DCBA", count=4)
    assert decode_string(encode_string("QDY30A", r), r.word_order) == "QDY30A"


def test_every_type_and_order_side_by_side() -> None:
    side = decode_all_orders(FLOAT_123456["CDAB"])
    assert side[("float32", "CDAB")] == 123456.0 and side[("float32", "ABCD")] != 123456.0
    assert side[("int16", "ABCD")] == 0x2000 and side[("int16", "BADC")] == 0x0020
    assert ("int64", "ABCD") not in side  # needs four words
    assert len(side) == 2 * 2 + 3 * 4  # 16-bit: ABCD/BADC; 32-bit: four orders each
    assert len(decode_all_orders([1, 2, 3, 4])) == 2 * 2 + 6 * 4
    assert decode_words(np.array([[0xFFFF]]), "int16")[0] == -1


# ---- the simulator's encoder against the gateway's decoder ---------------------------------

def _round_trip_registers(type_: str, order: str, n: int) -> list[Register]:
    scale = 0.01 if "int" in type_ else 2.0
    w = WIDTH[type_]
    return [reg(f"v{i}", 3 + i * w, type_, order, scale=scale, offset=-5.0) for i in range(n)]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("type_", NUMERIC)
def test_encoder_and_decoder_round_trip(type_: str, order: str) -> None:
    seed = NUMERIC.index(type_) * len(ORDERS) + ORDERS.index(order)
    rng = np.random.default_rng(seed)  # stable across runs (unlike hash() of a str)
    regs = _round_trip_registers(type_, order, 120 // WIDTH[type_])  # one request of 120 words
    lo, hi = {"int16": (-300.0, 300.0), "uint16": (-5.0, 600.0), "uint32": (-5.0, 4e7),
              "uint64": (-5.0, 1e12), "int32": (-2e7, 2e7), "int64": (-1e12, 1e12)
              }.get(type_, (-1e30, 1e30))
    values = rng.uniform(lo, hi, len(regs))
    reply = [w for v, r in zip(values, regs, strict=True) for w in encode_value(float(v), r)]
    decoded, ok = decode(one_block(regs), reply)  # every field in one vectorised call
    assert ok.all()
    if "int" in type_:
        # the integer types keep the value to half a step of 0.01
        assert np.all(np.abs(decoded - values) <= 0.005 + 1e-14 * np.abs(values))
    else:
        rel = 2.0**-23 if type_ == "float32" else 2.0**-51
        assert np.all(np.abs(decoded - values) <= rel * np.abs(values) + 1e-9)


@pytest.mark.parametrize("order", ORDERS)
def test_round_trip_through_a_decimal_places_register(order: str) -> None:
    decimals = reg("decimals", 0)
    level = reg("level", 1, "int32", order, decimals_register="decimals", scale=1.0)
    rng = np.random.default_rng(ORDERS.index(order))
    for dp in (0, 1, 2, 3):
        v = round(float(rng.uniform(-1000, 1000)), dp)
        words = [*encode_value(dp, decimals), *encode_value(v, level, decimals=dp)]
        values, ok = decode_block([decimals, level], words)
        assert ok.all() and values[1] == pytest.approx(v, abs=10.0**-dp / 2)


def test_encoder_clamps_integers_to_their_range() -> None:
    assert encode_value(1e6, reg("a", 0, "int16")) == [0x7FFF]
    assert encode_value(-1e6, reg("a", 0, "int16")) == [0x8000]
    assert encode_value(-3.0, reg("a", 0, "uint16")) == [0]
    assert encode_value(1e30, reg("a", 0, "uint32", "CDAB")) == [0xFFFF, 0xFFFF]
    assert encode_value(144.1, reg("rain", 0, scale=0.1)) == [0x05A1]
    assert encode_value(-0.10, reg("level", 4, "int16"), decimals=2) == [0xFFF6]
    with pytest.raises(ValueError, match="cannot hold NaN"):
        encode_value(float("nan"), reg("a", 0, "int32"))


def test_encoded_bits_decode_back() -> None:
    fields = [reg("b0", 7, "bit", bit=0), reg("b3", 7, "bit", "BADC", bit=3),
              reg("b15", 7, "bit", bit=15), reg("b1", 7, "bit", bit=1)]
    image = encode_bits(zip(fields, [1, 1, 1, 0], strict=True))
    assert image == {7: 0x8001 | 0x0800}
    # the word as the device holds it, read back per field in each field's own order
    values, _ = decode_block(fields, [image[7]])
    assert values.tolist() == [1.0, 1.0, 1.0, 0.0]
    same_order = [reg("b0", 7, "bit", bit=0), reg("b3", 7, "bit", bit=3)]
    values, _ = decode_block(same_order, [encode_bits(zip(same_order, [0, 1], strict=True))[7]])
    assert values.tolist() == [0.0, 1.0]
    assert encode_bits([(reg("c", 4, "bit", table="coil"), 1)]) == {4: 1}
    assert encode_value(1, reg("c", 4, "bit", table="coil")) == [1]


def test_encoder_imports_nothing_from_the_gateway_but_profiles() -> None:
    tree = ast.parse((ROOT / "firmware_sim" / "encode.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m and m.startswith("gateway")} == {"gateway.profiles"}


def test_word_order_overrides_from_the_site_config(tmp_path) -> None:
    """A device configured DCBA overrides its profile; a point's own order overrides both."""
    from gateway.acquire import DevicePoller
    from gateway.config import ConfigError, load_site

    example = ROOT / "config" / "examples" / "tailings_pond.toml"
    text = example.read_text(encoding="utf-8").replace(
        'profile = "vw_logger_16ch"', 'profile = "vw_logger_16ch"\nword_order = "DCBA"').replace(
        'channel = "empty_height"', 'channel = "empty_height"\nword_order = "BADC"')
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_site(path)
    radar = DevicePoller(cfg.device("radar_wl1"), cfg)
    logger = DevicePoller(cfg.device("vw_logger_a"), cfg)
    assert {r.word_order for r in logger.decoder.registers} == {"DCBA"}
    (empty,) = radar.decoder.registers
    assert empty.word_order == "BADC"
    values, _ = radar.decoder.decode([np.array([0x3412], np.uint16)])
    assert values[0] == 0x1234
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('word_order = "DCBA"', 'word_order = "ABDC"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"devices\[1\]\.word_order"):
        load_site(bad)
