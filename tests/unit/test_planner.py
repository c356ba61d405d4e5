"""Read planning: the fewest requests within the limits, proved against brute force and naive."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from gateway.modbus.planner import naive_plan, plan_reads
from gateway.profiles import Register, load_profile

ROOT = Path(__file__).resolve().parent.parent.parent


def test_vw_logger_all_channels_merge_within_max_read() -> None:
    prof = load_profile(ROOT / "config" / "profiles" / "vw_logger_16ch.toml")
    assert len(plan_reads(prof.registers, max_read=64)) == 1
    plan = plan_reads(prof.registers, max_read=16)
    assert len(plan) == 2 and all(q.count <= 16 for q in plan)
    assert len(naive_plan(prof.registers)) == 32


def test_gap_and_table_separation() -> None:
    prof = load_profile(ROOT / "config" / "profiles" / "radar_level_80ghz.toml")
    regs = prof.registers  # holding 1, 3, 5: one word apart
    assert len(plan_reads(regs, max_gap=0)) == 3
    (q,) = plan_reads(regs, max_gap=1)
    assert (q.function_code, q.address, q.count) == (3, 1, 5)
    assert [off for _, off in q.fields] == [0, 2, 4]
    inp = Register("i", "input", 1, 1, "uint16", 1, "ABCD")
    assert {q.function_code for q in plan_reads([*regs, inp], max_gap=8)} == {3, 4}


def test_register_wider_than_the_limit_is_an_error() -> None:
    wide = Register("s", "holding", 0, 0, "string", 10, "ABCD")
    with pytest.raises(ValueError, match="largest read"):
        plan_reads([wide], max_read=8)


def _min_requests(spans: tuple[tuple[int, int], ...], max_read: int, max_gap: int) -> int:
    """Exact minimum by dynamic programming over contiguous groups of the sorted registers."""
    @cache
    def best(i: int) -> int:
        if i == len(spans):
            return 0
        out = 10**9
        start, end = spans[i][0], spans[i][1]
        for j in range(i, len(spans)):
            if j > i:
                if spans[j][0] - end > max_gap:
                    break
                end = max(end, spans[j][1])
            if end - start > max_read:
                break
            out = min(out, 1 + best(j + 1))
        return out
    return best(0)


@pytest.mark.parametrize("seed", range(40))
def test_greedy_plan_is_minimal_and_within_limits(seed: int) -> None:
    rng = np.random.default_rng(seed)
    max_read, max_gap = int(rng.integers(4, 20)), int(rng.integers(0, 6))
    addresses = sorted(set(rng.integers(0, 120, int(rng.integers(1, 25))).tolist()))
    regs = []
    for a in addresses:
        t = "float32" if rng.random() < 0.3 else "uint16"
        regs.append(Register(f"r{a}", "holding", a, a, t, 2 if t == "float32" else 1, "ABCD"))
    plan = plan_reads(regs, max_read=max_read, max_gap=max_gap)
    covered = {r.name for q in plan for r, _ in q.fields}
    assert covered == {r.name for r in regs}
    for q in plan:
        assert q.count <= max_read
        for r, off in q.fields:
            assert q.address + off == r.wire_address and off + r.count <= q.count
    spans = tuple(sorted((r.wire_address, r.wire_address + r.count) for r in regs))
    assert len(plan) == _min_requests(spans, max_read, max_gap) <= len(naive_plan(regs))
