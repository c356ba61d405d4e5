"""Read planning: the fewest requests within the limits, checked against a brute-force minimum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.modbus.planner import ReadRequest, describe_plan, naive_plan, plan_reads
from gateway.profiles import Register, load_profile

ROOT = Path(__file__).resolve().parent.parent.parent
PROFILES = ROOT / "config" / "profiles"
WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
         "uint64": 4, "float64": 4, "bit": 1}


def reg(name: str, address: int, type_: str = "uint16", table: str = "holding", **kw) -> Register:
    count = kw.pop("count", WIDTH.get(type_, 1))
    return Register(name=name, table=table, address=address, wire_address=address, type=type_,
                    count=count, word_order=kw.pop("word_order", "ABCD"), **kw)


def names(q: ReadRequest) -> list[str]:
    return [r.name for r, _ in q.fields]


def test_vw_logger_32_adjacent_registers_merge_within_max_read() -> None:
    prof = load_profile(PROFILES / "vw_logger_16ch.toml")
    assert [r.wire_address for r in prof.registers] == list(range(100, 132))
    (q,) = plan_reads(prof.registers, max_read=64)
    assert (q.table, q.function_code, q.address, q.count) == ("holding", 3, 100, 32)
    assert [off for _, off in q.fields] == list(range(32))
    plan = plan_reads(prof.registers, max_read=16)
    assert [(q.address, q.count) for q in plan] == [(100, 16), (116, 16)]
    assert names(plan[0])[0] == "freq_ch1" and names(plan[1])[0] == "temp_ch1"
    assert len(naive_plan(prof.registers)) == 32


def test_analog_module_one_input_read_and_profile_limit() -> None:
    prof = load_profile(PROFILES / "analog_input_64ch.toml")
    (q,) = plan_reads(prof.registers, max_read=prof.max_read)
    assert (q.function_code, q.address, q.count) == (4, 0, 64)


def test_gaps_bridge_only_up_to_max_gap() -> None:
    prof = load_profile(PROFILES / "radar_level_80ghz.toml")
    regs = prof.registers  # holding 1, 3, 5: one unused register between each
    assert len(plan_reads(regs, max_gap=0)) == 3
    (q,) = plan_reads(regs, max_gap=1)
    assert (q.function_code, q.address, q.count) == (3, 1, 5)
    assert [off for _, off in q.fields] == [0, 2, 4]
    # holes of 3 and 4 registers: max_gap 3 bridges the first only
    spread = [reg("a", 0), reg("b", 4), reg("c", 9)]
    assert [names(q) for q in plan_reads(spread, max_gap=0)] == [["a"], ["b"], ["c"]]
    assert [names(q) for q in plan_reads(spread, max_gap=3)] == [["a", "b"], ["c"]]
    assert [names(q) for q in plan_reads(spread, max_gap=4)] == [["a", "b", "c"]]
    # adjacent multi-word registers touch: no hole
    (q,) = plan_reads([reg("f", 10, "float32"), reg("g", 12, "float32")], max_gap=0)
    assert (q.address, q.count) == (10, 4)


def test_tables_are_planned_separately_with_their_function_codes() -> None:
    regs = [reg("h", 0), reg("i", 0, table="input"), reg("i2", 1, table="input"),
            reg("c", 0, "bit", table="coil"), reg("d", 5, "bit", table="discrete")]
    plan = plan_reads(regs, max_gap=100)
    assert [(q.table, q.function_code, q.address, q.count) for q in plan] == [
        ("holding", 3, 0, 1), ("input", 4, 0, 2), ("coil", 1, 0, 1), ("discrete", 2, 5, 1)]


def test_bit_tables_use_max_bits_not_max_read() -> None:
    coils = [reg(f"c{a}", a, "bit", table="coil") for a in range(0, 300, 3)]
    (q,) = plan_reads(coils, max_read=10, max_gap=2)
    assert (q.function_code, q.address, q.count) == (1, 0, 298)
    plan = plan_reads(coils, max_gap=2, max_bits=100)
    assert len(plan) == 3 and all(q.count <= 100 for q in plan)


def test_requests_never_exceed_max_read() -> None:
    regs = [reg(f"r{a}", a, "float32") for a in range(0, 40, 2)]
    for max_read in (2, 3, 5, 8, 13):
        plan = plan_reads(regs, max_read=max_read, max_gap=5)
        assert all(q.count <= max_read for q in plan)
        assert sorted(n for q in plan for n in names(q)) == sorted(r.name for r in regs)


def test_register_wider_than_the_limit_is_an_error_naming_both() -> None:
    wide = reg("serial_no", 0, "string", count=10)
    with pytest.raises(ValueError, match=r"'serial_no'.*largest read of 8 registers.*max_read"):
        plan_reads([wide], max_read=8)
    with pytest.raises(ValueError, match="max_read must be"):
        plan_reads([reg("a", 0)], max_read=126)


def test_bit_fields_sharing_a_status_word_ride_together() -> None:
    status = [reg(f"b{k}", 7, "bit", bit=k) for k in (0, 3, 15)]
    (q,) = plan_reads([*status, reg("v", 8)], max_gap=0)
    assert (q.address, q.count) == (7, 2)
    assert [off for _, off in q.fields] == [0, 0, 0, 1]


QDY30A = """
name = "qdy30a"
address_base = 0
max_read = 8
[[registers]]
name = "decimals"
address = 3
type = "uint16"
role = "config"
[[registers]]
name = "level"
address = 4
type = "int16"
decimals_register = "decimals"
[[registers]]
name = "range"
address = 6
type = "int16"
decimals_register = "decimals"
"""


def test_decimals_register_is_added_from_the_profile(tmp_path) -> None:
    path = tmp_path / "qdy30a.toml"
    path.write_text(QDY30A, encoding="utf-8")
    prof = load_profile(path)
    (q,) = plan_reads([prof.register("level")], profile_registers=prof.registers)
    assert names(q) == ["decimals", "level"] and (q.address, q.count) == (3, 2)
    # both values name it; it is read once
    plan = plan_reads([prof.register("level"), prof.register("range")],
                      profile_registers=prof.registers, max_gap=0)
    assert [names(q) for q in plan] == [["decimals", "level"], ["range"]]
    # found among the registers given, without the profile
    (q,) = plan_reads([prof.register("level"), prof.register("decimals")])
    assert names(q) == ["decimals", "level"]
    with pytest.raises(ValueError, match="'level' takes its decimal places from register "
                                         "'decimals'"):
        plan_reads([prof.register("level")])


def test_naive_plan_and_description() -> None:
    prof = load_profile(PROFILES / "radar_level_80ghz.toml")
    naive = naive_plan(prof.registers)
    assert [(q.address, q.count) for q in naive] == [(1, 1), (3, 1), (5, 1)]
    text = describe_plan(plan_reads(prof.registers, max_gap=1))
    assert "empty_height, level, installation_height" in text
    assert text.splitlines()[-1] == "1 request(s), 5 register(s)/bit(s) read, 2 of them in holes"


# ---- property test against a brute-force minimum -------------------------------------------

def _valid(spans: list[tuple[int, int]], limit: int, max_gap: int) -> bool:
    """The definition, independent of the planner: one read of the union of `spans`."""
    lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
    if hi - lo > limit:
        return False
    used = np.zeros(hi - lo, dtype=bool)
    for s, e in spans:
        used[s - lo:e - lo] = True
    hole = 0
    for u in used:
        hole = 0 if u else hole + 1
        if hole > max_gap:
            return False
    return True


def _brute_force_minimum(spans: list[tuple[int, int]], limit: int, max_gap: int) -> int:
    """Fewest valid subsets partitioning the registers, over every partition (bitmask DP)."""
    n = len(spans)
    full = (1 << n) - 1
    valid = [False] * (full + 1)
    for mask in range(1, full + 1):
        valid[mask] = _valid([spans[i] for i in range(n) if mask >> i & 1], limit, max_gap)
    best = [0] + [n + 1] * full
    for mask in range(1, full + 1):
        low = mask & -mask
        rest = mask ^ low
        sub = rest
        while True:  # every subset of `mask` that holds its lowest register
            group = sub | low
            if valid[group]:
                best[mask] = min(best[mask], 1 + best[mask ^ group])
            if sub == 0:
                break
            sub = (sub - 1) & rest
    return best[full]


@pytest.mark.parametrize("seed", range(60))
def test_greedy_plan_is_minimal_covers_everything_and_respects_limits(seed: int) -> None:
    rng = np.random.default_rng(seed)
    max_read, max_gap = int(rng.integers(4, 14)), int(rng.integers(0, 5))
    regs = []
    for i in range(int(rng.integers(1, 10))):
        # overlaps, nested registers and shared status words included on purpose
        type_ = str(rng.choice(["uint16", "float32", "float64", "bit"]))
        extra = {"bit": int(rng.integers(0, 16))} if type_ == "bit" else {}
        regs.append(reg(f"r{i}", int(rng.integers(0, 40)), type_, **extra))
    plan = plan_reads(regs, max_read=max_read, max_gap=max_gap)

    placed = [r.name for q in plan for r, _ in q.fields]
    assert sorted(placed) == sorted(r.name for r in regs)  # every register, exactly once
    for q in plan:
        assert q.count <= max_read and q.function_code == 3
        spans = [(r.wire_address, r.wire_address + r.count) for r, _ in q.fields]
        assert q.address == min(s for s, _ in spans) and q.end == max(e for _, e in spans)
        assert _valid(spans, max_read, max_gap)
        for r, off in q.fields:
            assert q.address + off == r.wire_address
    spans = [(r.wire_address, r.wire_address + r.count) for r in regs]
    assert len(plan) == _brute_force_minimum(spans, max_read, max_gap)
    assert len(plan) <= len(naive_plan(regs))
