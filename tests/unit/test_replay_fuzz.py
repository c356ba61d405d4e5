"""Property: whatever a logger, a bad disk or an editor does to an export, `minewatch replay`
either replays it or says why with a ReplayError; it never raises anything else.

A small valid export is mutated by Hypothesis (byte flips, inserted bytes, deleted, duplicated
and swapped lines, a cell replaced by an extreme or odd value, a re-encoding, another
separator). Bounded examples in `make test` (derandomised under CI=true, so a CI run is
repeatable), many more in `make fuzz` (tests/support/fuzz.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateway.replay import replay
from gateway.replay_input import ReplayError, read_export
from tests.support.fuzz import examples

CELLS = ["inf", "-inf", "nan", "1e400", "9" * 400, "-9999", "", "#N/A", "1,5", "0x10", "１２３",
         "2026-13-45 25:61:00", "1e-400", "99999999999999999999", "\x00", '"', "库水位"]
HEADER = "时间,库水位,温度"
BASE = [HEADER] + [f"2026-07-20 {h:02d}:{m:02d}:00,{1250 + 0.01 * (6 * h + m // 10):.3f},"
                   f"{20 + (m % 7) * 0.1:.1f}" for h in range(8) for m in range(0, 60, 10)]

_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("delete_line"), st.integers(0, 60), st.just(0)),
    st.tuples(st.just("duplicate_line"), st.integers(0, 60), st.just(0)),
    st.tuples(st.just("swap_lines"), st.integers(0, 60), st.integers(0, 60)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("cell"), st.integers(0, 200), st.sampled_from(CELLS)),
)
_encoding = st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
_sep = st.sampled_from([",", ";", "\t"])


def _mutate(encoding: str, sep: str, ops: list[tuple]) -> bytes:
    lines = [line.replace(",", sep) for line in BASE]
    for op, a, b in ops:  # line operations first, on text, then byte damage
        if op == "delete_line" and lines:
            del lines[a % len(lines)]
        elif op == "duplicate_line" and lines:
            lines.insert(a % len(lines), lines[a % len(lines)])
        elif op == "swap_lines" and lines:
            i, j = a % len(lines), b % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "cell" and lines:
            row = a % len(lines)
            cells = lines[row].split(sep)
            cells[(a // 3) % len(cells)] = b
            lines[row] = sep.join(cells)
    data = bytearray("\n".join(lines).encode(encoding))
    for op, a, b in ops:
        if op == "flip" and data:
            data[a % len(data)] ^= b
        elif op == "insert":
            at = a % (len(data) + 1)
            data[at:at] = b
        elif op == "truncate" and data:
            del data[a % len(data):]
    return bytes(data)


@examples(300)
@given(_encoding, _sep, st.lists(_op, max_size=6))
def test_reading_a_mutated_export_never_raises_but_replay_error(encoding, sep, ops) -> None:
    data = _mutate(encoding, sep, ops)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "export.csv"
        path.write_bytes(data)
        try:
            t, names, x, report = read_export(path, tz="Asia/Shanghai")
        except ReplayError:
            return
    assert t.shape[0] == x.shape[0] == report.rows and x.shape[1] == len(names)
    assert (t[1:] > t[:-1]).all()
    assert report.rows + report.bad_rows + report.stepped_back_rows + report.duplicates \
        == report.lines


@examples(40)
@given(_encoding, _sep, st.lists(_op, max_size=4))
def test_replaying_a_mutated_export_never_raises_but_replay_error(encoding, sep, ops) -> None:
    data = _mutate(encoding, sep, ops)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "export.csv"
        path.write_bytes(data)
        try:
            summary = replay(path, Path(work) / "out.csv", quantity="water_level",
                             events_path=Path(work) / "events.jsonl")
        except ReplayError:
            return
        assert summary["rows"] >= 1


def test_a_column_name_with_a_control_character_replays(tmp_path: Path) -> None:
    """Found by the property above under `make fuzz`: a DEL byte in the header made the
    replay's own site config invalid TOML (JSON leaves DEL raw, TOML refuses it)."""
    path = tmp_path / "export.csv"
    path.write_text("\n".join(["时间,库\x7f水位"] + [line.split(",", 2)[0] + "," +
                                                   line.split(",", 2)[1] for line in BASE[1:]]),
                    encoding="utf-8")
    summary = replay(path, tmp_path / "out.csv", quantity="water_level")
    assert summary["rows"] == len(BASE) - 1
