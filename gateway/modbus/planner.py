"""Read planning: merge the registers a device needs into the fewest Modbus requests.

Per table (holding FC3, input FC4, coil FC1, discrete FC2), registers sorted by wire address are
merged left to right while the request stays within the device's largest read (at most 125
registers or 2000 bits) and no hole of unneeded registers exceeds `max_gap`. Greedy is optimal
here: on a line, extending the current request whenever it is allowed never needs more requests
than any other split, because every later register can only be covered by a request that starts
at or after the current one's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.profiles import Register

__all__ = ["ReadRequest", "plan_reads", "naive_plan", "FUNCTION_CODES", "describe_plan"]

FUNCTION_CODES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True)
class ReadRequest:
    table: str
    function_code: int
    address: int  # wire address of the first register
    count: int
    fields: tuple[tuple[Register, int], ...]  # (register, offset of its first word in the reply)


def _with_decimals(registers: Sequence[Register], all_registers: Sequence[Register]) -> list[Register]:
    by_name = {r.name: r for r in all_registers}
    out = {r.name: r for r in registers}
    for r in registers:
        if r.decimals_register and r.decimals_register not in out:
            out[r.decimals_register] = by_name[r.decimals_register]
    return list(out.values())


def plan_reads(registers: Sequence[Register], max_read: int = MAX_REGISTERS, max_gap: int = 0,
               max_bits: int = MAX_BITS, profile_registers: Sequence[Register] | None = None
               ) -> list[ReadRequest]:
    """The fewest requests covering `registers` within the limits (see the module docstring)."""
    regs = _with_decimals(registers, profile_registers or registers)
    requests: list[ReadRequest] = []
    for table, fc in FUNCTION_CODES.items():
        limit = max_bits if table in ("coil", "discrete") else max_read
        group = sorted((r for r in regs if r.table == table), key=lambda r: (r.wire_address, r.count))
        start = end = -1  # current request spans [start, end)
        members: list[Register] = []
        for r in group:
            if r.count > limit:
                raise ValueError(f"register {r.name!r} spans {r.count} words, more than the "
                                 f"device's largest read of {limit}")
            r_end = r.wire_address + r.count
            if members and r.wire_address - end <= max_gap and max(end, r_end) - start <= limit:
                end = max(end, r_end)
                members.append(r)
                continue
            if members:
                requests.append(_request(table, fc, start, end, members))
            start, end, members = r.wire_address, r_end, [r]
        if members:
            requests.append(_request(table, fc, start, end, members))
    return requests


def _request(table: str, fc: int, start: int, end: int, members: list[Register]) -> ReadRequest:
    return ReadRequest(table, fc, start, end - start,
                       tuple((r, r.wire_address - start) for r in members))


def naive_plan(registers: Sequence[Register]) -> list[ReadRequest]:
    """One request per register: the baseline that peers' users complain about."""
    return [_request(r.table, FUNCTION_CODES[r.table], r.wire_address, r.wire_address + r.count,
                     [r]) for r in registers]


def describe_plan(requests: Sequence[ReadRequest]) -> str:
    lines = [f"{'FC':>3} {'table':8s} {'address':>7} {'count':>5}  registers"]
    for q in requests:
        names = ", ".join(r.name for r, _ in q.fields)
        lines.append(f"{q.function_code:>3} {q.table:8s} {q.address:>7} {q.count:>5}  {names}")
    return "\n".join(lines)
