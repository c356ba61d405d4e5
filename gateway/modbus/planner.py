"""Read planning: merge the registers a device needs into the fewest Modbus requests.

Registers are grouped by table (holding FC3, input FC4, coil FC1, discrete FC2), sorted by wire
address and merged left to right into requests that span at most `max_read` registers
(`max_bits` for the bit tables) and never bridge a hole of more than `max_gap` unneeded
registers: reading a hole costs bus time, a separate request costs a turnaround, and `max_gap`
is the device's price between the two. A register that names a `decimals_register` pulls that
register into the plan as well, so the decoder can scale it in the same poll.

`naive_plan` (one request per register) is the baseline a plan is measured against, and
`describe_plan` prints a plan as a table for `minewatch device plan`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.profiles import Register

__all__ = [
    "FUNCTION_CODES",
    "MAX_BITS",
    "MAX_REGISTERS",
    "BIT_TABLES",
    "ReadRequest",
    "plan_reads",
    "naive_plan",
    "describe_plan",
]

FUNCTION_CODES: dict[str, int] = {"holding": 3, "input": 4, "coil": 1, "discrete": 2}
BIT_TABLES = ("coil", "discrete")
# protocol limits of one read (Modbus application protocol 1.1b3, §6.1-6.4)
MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True)
class ReadRequest:
    """One Modbus read: where it starts on the wire, how much it reads and what sits where."""

    table: str
    function_code: int
    address: int  # wire address of the first register (or bit)
    count: int  # registers (or bits for coil/discrete)
    fields: tuple[tuple[Register, int], ...]  # (register, offset of its first word/bit in the reply)

    @property
    def end(self) -> int:
        """Wire address one past the last register read."""
        return self.address + self.count


def plan_reads(
    registers: Sequence[Register],
    max_read: int = MAX_REGISTERS,
    max_gap: int = 0,
    max_bits: int = MAX_BITS,
    profile_registers: Sequence[Register] | None = None,
) -> list[ReadRequest]:
    """The fewest requests that read every register of `registers` within the limits.

    `max_read` bounds a request over holding/input registers, `max_bits` over coils/discrete
    inputs; `max_gap` is the largest hole of unneeded registers (bits) a request may bridge
    (0: only adjacent or overlapping registers share a request). A register with a
    `decimals_register` brings that register along; it is looked up by name in
    `profile_registers` (pass `profile.registers`) or else in `registers` itself. Requests come
    out by table (holding, input, coil, discrete), then by address; `fields` by address.

    Raises ValueError when a single register is wider than the limit of its table, when a
    decimals register cannot be found, or when a limit is outside the protocol's range.
    """
    if not 1 <= max_read <= MAX_REGISTERS:
        raise ValueError(f"max_read must be 1..{MAX_REGISTERS} registers, got {max_read}")
    if not 1 <= max_bits <= MAX_BITS:
        raise ValueError(f"max_bits must be 1..{MAX_BITS} bits, got {max_bits}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    regs = _with_decimals(registers, profile_registers)
    requests: list[ReadRequest] = []
    for table, fc in FUNCTION_CODES.items():
        group = [r for r in regs if r.table == table]
        if not group:
            continue
        bits = table in BIT_TABLES
        limit = max_bits if bits else max_read
        for r in group:
            if r.count > limit:
                what = "bits" if bits else "registers"
                raise ValueError(
                    f"register {r.name!r} ({r.type}, {r.count} {what} at {table} "
                    f"{r.wire_address}) is wider than the largest read of {limit} {what} "
                    f"(the profile's {'max_bits' if bits else 'max_read'}); it cannot be read "
                    f"in one request"
                )
        requests.extend(_merge(table, fc, group, limit, max_gap))
    return requests


def _merge(table: str, fc: int, group: list[Register], limit: int, max_gap: int
           ) -> list[ReadRequest]:
    """Greedy left-to-right merge of one table's registers.

    First, a register lying wholly inside another needed register's span (bit fields sharing a
    status word, an overlapping alias) rides with that "carrier": whichever request reads the
    carrier reads it too, at no cost. Sorted by (start, longest first), a register is such a
    rider exactly when it ends no later than the furthest end seen so far. The carriers left have
    strictly increasing starts *and* ends, so a request is a run of consecutive carriers, and
    dropping carriers from the front of a valid run leaves a valid run (the span shrinks, the
    holes are a subset). Greedy is then optimal by the usual "stays ahead" argument: if greedy's
    first k requests cover carriers 0..g_k and some plan's first k cover 0..o_k, then g_k >= o_k
    for every k (induction: that plan's request k+1 is a valid run o_k+1..o_{k+1}; its suffix
    from g_k+1 is valid too, and greedy extends at least that far), so greedy never needs more
    requests. `tests/unit/test_planner.py` checks this against a brute-force minimum.
    """
    ordered = sorted(group, key=lambda r: (r.wire_address, -r.count, r.name))
    carriers: list[tuple[Register, list[Register]]] = []
    furthest = -1
    for r in ordered:
        r_end = r.wire_address + r.count
        if carriers and r_end <= furthest:
            # carriers' ends increase strictly, so the last one reaches furthest and, starting
            # no later than r, contains it
            carriers[-1][1].append(r)
            continue
        carriers.append((r, [r]))
        furthest = r_end

    requests: list[ReadRequest] = []
    members: list[Register] = []
    start = end = 0  # the current request reads [start, end)
    for carrier, riders in carriers:
        c_start, c_end = carrier.wire_address, carrier.wire_address + carrier.count
        if members and c_start - end <= max_gap and c_end - start <= limit:
            members.extend(riders)
            end = c_end
            continue
        if members:
            requests.append(_request(table, fc, start, end, members))
        members, start, end = list(riders), c_start, c_end
    if members:
        requests.append(_request(table, fc, start, end, members))
    return requests


def _with_decimals(registers: Sequence[Register],
                   profile_registers: Sequence[Register] | None) -> list[Register]:
    """`registers` without duplicates, plus every decimals register they name."""
    out: dict[str, Register] = {}
    for r in registers:
        out.setdefault(r.name, r)
    lookup = {r.name: r for r in (profile_registers or ())}
    # the caller's copy wins: it carries the caller's word-order overrides
    lookup.update(out)
    for r in list(out.values()):
        name = r.decimals_register
        if not name or name in out:
            continue
        if name not in lookup:
            raise ValueError(
                f"register {r.name!r} takes its decimal places from register {name!r}, which is "
                f"not in the registers given; pass the profile's registers as profile_registers"
            )
        dec = lookup[name]
        if dec.decimals_register:
            raise ValueError(f"decimals register {name!r} of {r.name!r} has a decimals register "
                             f"of its own ({dec.decimals_register!r}); only one level is supported")
        out[name] = dec
    return list(out.values())


def _request(table: str, fc: int, start: int, end: int, members: list[Register]) -> ReadRequest:
    ordered = sorted(members, key=lambda r: (r.wire_address, -r.count, r.name))
    return ReadRequest(table, fc, start, end - start,
                       tuple((r, r.wire_address - start) for r in ordered))


def naive_plan(registers: Sequence[Register]) -> list[ReadRequest]:
    """One request per register, in the order given: the baseline a plan is measured against."""
    return [_request(r.table, FUNCTION_CODES[r.table], r.wire_address, r.wire_address + r.count,
                     [r]) for r in registers]


def describe_plan(requests: Sequence[ReadRequest]) -> str:
    """A plan as a text table: function code, table, wire address, count and registers read."""
    lines = [f"{'FC':>3} {'table':8s} {'address':>7} {'count':>5}  registers"]
    words = needed = 0
    for q in requests:
        names = ", ".join(r.name for r, _ in q.fields)
        lines.append(f"{q.function_code:>3} {q.table:8s} {q.address:>7} {q.count:>5}  {names}")
        words += q.count
        used: set[int] = set()
        for r, off in q.fields:
            used.update(range(off, off + r.count))
        needed += len(used)
    lines.append(f"{len(requests)} request(s), {words} register(s)/bit(s) read, "
                 f"{words - needed} of them in holes")
    return "\n".join(lines)
