"""The config problem cases of tests/cases/: a folder per field problem, holding a site config
and what `minewatch` must make of it (see tests/cases/README.md)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from firmware_sim.slave import Reply

CASES = Path(__file__).resolve().parent.parent / "cases"
EXPECTED = ("expected_error.txt", "expected_values.toml", "expected_ok.txt")


def case_folders() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir() and p.name != "__pycache__")


def case_file(folder: Path) -> Path:
    """The file a case gives `config validate`: site.toml, or the one `validate.txt` names
    (its first line that is not a # comment; it may be absent on purpose)."""
    named = folder / "validate.txt"
    if not named.is_file():
        return folder / "site.toml"
    lines = [x.strip() for x in named.read_text(encoding="utf-8").splitlines()]
    return folder / next(x for x in lines if x and not x.startswith("#"))


def cases_with(expected: str) -> list[Path]:
    """The case folders that hold `expected` (one of EXPECTED)."""
    return [p for p in case_folders() if (p / expected).is_file()]


class ImageSource:
    """A simulated device line that holds exactly the register words of a case's `registers.toml`:
    `[[blocks]]` of `unit`, `table` (holding or input), wire `address` and `words`. A read of a
    register no block holds is answered with exception 2 (illegal data address), as a device does.
    """

    def __init__(self, path: Path):
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
        self.tables: dict[tuple[int, str], dict[int, int]] = {}
        for i, block in enumerate(doc.get("blocks", [])):
            table = block.get("table", "holding")
            if table not in ("holding", "input"):
                raise ValueError(f"{path}: blocks[{i}].table must be holding or input")
            words = self.tables.setdefault((int(block["unit"]), table), {})
            for k, word in enumerate(block["words"]):
                if not 0 <= word <= 0xFFFF:
                    raise ValueError(f"{path}: blocks[{i}].words[{k}] = {word} is not a 16-bit word")
                words[int(block["address"]) + k] = word

    def units(self) -> set[int]:
        return {unit for unit, _ in self.tables}

    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        words = self.tables.get((unit, table), {})
        if any(a not in words for a in range(address, address + count)):
            return Reply(exception=2)
        return Reply(registers=[words[a] for a in range(address, address + count)])

    def write(self, unit: int, table: str, address: int, values: list) -> Reply:
        return Reply(exception=1)  # a case's device is read, never written
