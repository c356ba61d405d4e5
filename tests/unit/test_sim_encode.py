"""The new device profiles load, and what the simulator's encoder writes into each register map
the gateway's planner + decoder read back as the same value (docs/modbus.md vectors included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firmware_sim.encode import encode_bits, encode_value
from gateway.modbus.decode import DeviceDecoder, decode_words
from gateway.modbus.planner import plan_reads
from gateway.profiles import DeviceProfile, load_profile

PROFILES = Path(__file__).resolve().parent.parent.parent / "config" / "profiles"
NEW = ("hydrostatic_level_qdy30a", "rain_gauge_tipping", "gnss_monitor", "inclinometer_string",
       "seepage_flow_meter", "gas_ch4", "gas_co", "gas_h2s", "gas_no2", "gas_o2",
       "gas_lel_head", "gas_toxic_head", "analog_input_8ch_ma", "radar_tank_gauge",
       "pressure_transmitter")
# plausible scenario values per register name (engineering units of the profile)
SAMPLE = {"level": -0.1, "decimals": 2, "rain_total": 144.1, "rain_event": 12.4,
          "intensity": 0.35, "disp_x": 123456.0, "disp_y": -3.25, "disp_z": 0.5,
          "fix_status": 2, "flow": 123456.0, "total_volume": 42.0, "concentration": 20.0,
          "status": 0, "unit_id": 7, "unit_code": 1, "zero_point": 0, "range_full": 5000,
          "ullage": 6.5, "product_temperature": 18.25, "pressure": 123456.0,
          "sensor_temperature": 21.5}


def _profile(name: str) -> DeviceProfile:
    return load_profile(PROFILES / f"{name}.toml")


def _sample(name: str) -> float:
    if name.startswith("tilt_"):
        return -12.345 + int(name[5:])
    if name.startswith("ma"):  # a 4-20 mA loop, in mA
        return 4.0 + 2.0 * int(name[2:])
    return SAMPLE.get(name, 0.0)


def _image(profile: DeviceProfile) -> dict[str, dict[int, int]]:
    """Register images per table as the simulator would serve them for the sample values."""
    image: dict[str, dict[int, int]] = {"holding": {}, "input": {}}
    decimals = int(SAMPLE["decimals"])
    for r in profile.registers:
        if r.type == "bit":
            continue
        d = decimals if r.decimals_register else 0
        for i, w in enumerate(encode_value(_sample(r.name), r, d)):
            image[r.table][r.wire_address + i] = w
    bits = [r for r in profile.registers if r.type == "bit"]
    for addr, word in encode_bits((r, 0.0) for r in bits).items():
        image[bits[0].table][addr] = word
    return image


@pytest.mark.parametrize("name", NEW)
def test_profile_loads(name: str) -> None:
    p = _profile(name)
    assert p.name == name and p.registers


def test_profiles_cover_orders_tables_addressing_and_parity() -> None:
    profiles = [_profile(n) for n in NEW]
    orders = {r.word_order for p in profiles for r in p.registers if r.count == 2}
    assert orders == {"ABCD", "CDAB", "BADC", "DCBA"}
    assert {r.table for p in profiles for r in p.registers} >= {"holding", "input"}
    assert any(p.address_base == 1 for p in profiles)
    assert [p.name for p in profiles if p.serial.parity == "E"] == ["gas_ch4"]


@pytest.mark.parametrize("name", NEW)
def test_simulator_words_decode_back(name: str) -> None:
    p = _profile(name)
    image = _image(p)
    requests = plan_reads(p.registers, max_read=p.max_read, max_gap=8,
                          profile_registers=p.registers)
    decoder = DeviceDecoder(requests)
    replies = [np.array([image[q.table].get(a, 0) for a in range(q.address, q.address + q.count)],
                        dtype=np.uint16) for q in requests]
    values, ok = decoder.decode(replies)
    for r in decoder.registers:
        if r.type == "bit" or r.role == "config":
            continue
        got = values[decoder.register_index[r.name]]
        assert ok[decoder.register_index[r.name]], r.name
        assert got == pytest.approx(_sample(r.name), rel=1e-6, abs=1e-3), r.name


def test_domain_vectors() -> None:
    # 123456.0 in the four orders (docs/modbus.md#word-and-byte-order), through the profiles that use each order
    expected = {"ABCD": [0x47F1, 0x2000], "CDAB": [0x2000, 0x47F1],
                "BADC": [0xF147, 0x0020], "DCBA": [0x0020, 0xF147]}
    for order, words in expected.items():
        assert decode_words([words], "float32", order)[0] == 123456.0
    assert encode_value(123456.0, _profile("gnss_monitor").register("disp_x")) == [0x2000, 0x47F1]
    assert encode_value(123456.0, _profile("seepage_flow_meter").register("flow")) == [
        0x0020, 0xF147]
    assert encode_value(123456.0, _profile("pressure_transmitter").register("pressure")) == [
        0x2000, 0x47F1]
    # a 4-20 mA loop in microamperes: 12.345 mA -> 12345
    assert encode_value(12.345, _profile("analog_input_8ch_ma").register("ma3")) == [12345]
    # rain 0x05A1 / 10 -> 144.1 mm
    assert encode_value(144.1, _profile("rain_gauge_tipping").register("rain_total")) == [0x05A1]
    # QDY30A 0xFFF6 with 2 decimals -> -0.10
    assert encode_value(-0.1, _profile("hydrostatic_level_qdy30a").register("level"), 2) == [
        0xFFF6]
