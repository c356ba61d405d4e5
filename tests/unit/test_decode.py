"""Decoding vectors of domain.md §5 and R10, and the simulator's encoder agrees with the decoder."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from firmware_sim.encode import encode_value
from gateway.modbus.decode import DeviceDecoder, decode_all_orders, decode_string, decode_words
from gateway.modbus.planner import plan_reads
from gateway.profiles import Register

ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")


def reg(name: str, address: int, type_: str = "uint16", order: str = "ABCD", **kw) -> Register:
    width = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
             "uint64": 4, "float64": 4, "bit": 1}[type_]
    return Register(name=name, table=kw.pop("table", "holding"), address=address,
                    wire_address=address, type=type_, count=width, word_order=order, **kw)


def _decode(registers: list[Register], words: list[int]) -> tuple[np.ndarray, np.ndarray]:
    requests = plan_reads(registers, max_gap=125)
    assert len(requests) == 1
    dec = DeviceDecoder(requests)
    values, ok = dec.decode([np.array(words, dtype=np.uint16)])
    order = [dec.register_index[r.name] for r in registers]
    return values[order], ok[order]


# 123456.0 as IEEE-754 float32 is 0x47F12000: A=0x47 B=0xF1 C=0x20 D=0x00
FLOAT_123456 = {"ABCD": [0x47F1, 0x2000], "CDAB": [0x2000, 0x47F1],
                "BADC": [0xF147, 0x0020], "DCBA": [0x0020, 0xF147]}


@pytest.mark.parametrize("order", ORDERS)
def test_float32_123456_in_every_word_order(order: str) -> None:
    assert struct.pack(">f", 123456.0) == bytes.fromhex("47F12000")
    values, ok = _decode([reg("x", 0, "float32", order)], FLOAT_123456[order])
    assert values[0] == 123456.0 and ok[0]
    assert encode_value(123456.0, reg("x", 0, "float32", order)) == FLOAT_123456[order]


def test_qdy30a_signed_value_with_decimal_places_register() -> None:
    # domain.md R10: value register 0x0004 int16 = 0xFFF6 (-10), decimals register = 2 -> -0.10
    decimals = reg("decimals", 3)
    value = reg("level", 4, "int16", decimals_register="decimals")
    values, ok = _decode([decimals, value], [2, 0xFFF6])
    assert values[1] == pytest.approx(-0.10) and ok.all()


def test_decimals_register_read_in_another_request_still_applies() -> None:
    decimals = reg("decimals", 3)
    value = reg("level", 60, "int16", decimals_register="decimals")
    requests = plan_reads([value], max_gap=0, profile_registers=[decimals, value])
    assert len(requests) == 2  # the decimals register was added to the plan
    dec = DeviceDecoder(requests)
    replies = [np.array([2], np.uint16) if q.address == 3 else np.array([0xFFF6], np.uint16)
               for q in requests]
    values, _ = dec.decode(replies)
    assert values[dec.register_index["level"]] == pytest.approx(-0.10)


def test_rain_counter_and_vibrating_wire_frequency_vectors() -> None:
    rain = reg("rain", 0, scale=0.1)
    freq = reg("freq", 1, scale=0.1)
    values, _ = _decode([rain, freq], [0x05A1, 0x3119])
    assert values[0] == pytest.approx(144.1)  # 0x05A1 / 10 mm
    assert values[1] == pytest.approx(1256.9)  # 0x3119 = 12569 x 0.1 Hz


@pytest.mark.parametrize("type_", ["int16", "uint16", "int32", "uint32", "float32", "int64",
                                   "uint64", "float64"])
@pytest.mark.parametrize("order", ORDERS)
def test_encoder_and_decoder_round_trip(type_: str, order: str) -> None:
    rng = np.random.default_rng(hash((type_, order)) & 0xFFFF)
    r = reg("x", 10, type_, order, scale=0.01 if "int" in type_ else 1.0, offset=-5.0)
    lo, hi = {"int16": (-300, 300), "uint16": (0, 600)}.get(type_, (-1e4, 1e4))
    if type_.startswith("uint"):
        lo = max(lo, -5.0)
    for value in rng.uniform(lo, hi, 20):
        words = encode_value(float(value), r)
        (decoded,), (ok,) = _decode([r], words)
        tol = 0.005 if "int" in type_ else abs(value) * 1e-6 + 1e-6
        assert ok and decoded == pytest.approx(value, abs=tol)


def test_bit_fields_and_nan_floats() -> None:
    status = [reg(f"b{k}", 0, "bit", bit=k) for k in (0, 3, 15)]
    f = reg("f", 1, "float32")
    nan_words = list(struct.unpack(">HH", struct.pack(">f", float("nan"))))
    values, ok = _decode([*status, f], [0b1000_0000_0000_1001, *nan_words])
    assert values[:3].tolist() == [1.0, 1.0, 1.0] and ok[:3].all()
    assert not ok[3]  # a NaN reading is not a value


def test_single_register_byte_swap() -> None:
    values, _ = _decode([reg("x", 0, "uint16", "BADC")], [0x3412])
    assert values[0] == 0x1234


def test_strings_and_side_by_side_orders() -> None:
    assert decode_string([0x4D57, 0x2D31, 0x0000]) == "MW-1"
    side = decode_all_orders(FLOAT_123456["CDAB"])
    assert side[("float32", "CDAB")] == 123456.0 and side[("float32", "ABCD")] != 123456.0
    assert decode_words(np.array([[0xFFFF]]), "int16")[0] == -1


def test_word_order_overrides_from_the_site_config(tmp_path) -> None:
    """A device configured CDAB overrides its profile; a point's own order overrides both."""
    from pathlib import Path

    from gateway.acquire import DevicePoller
    from gateway.config import load_site

    example = Path(__file__).resolve().parent.parent.parent / "config/examples/tailings_pond.toml"
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
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match=r"devices\[1\]\.word_order"):
        load_site(bad)
