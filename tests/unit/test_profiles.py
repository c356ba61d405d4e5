"""Register addresses as manuals print them: 0-based, 1-based, and Modicon 4xxxx / 3xxxxx."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.profiles import ProfileError, load_profile

HEAD = 'name = "p"\naddress_base = {base}\n'
REG = '[[registers]]\nname = "{name}"\ntable = "{table}"\naddress = {address}\ntype = "uint16"\n'


def _profile(tmp: Path, base: int, *regs: tuple[str, str, int]) -> Path:
    path = tmp / "p.toml"
    path.write_text(HEAD.format(base=base) + "".join(
        REG.format(name=n, table=t, address=a) for n, t, a in regs))
    return path


@pytest.mark.parametrize(("base", "table", "address", "wire"), [
    (0, "holding", 0, 0), (0, "holding", 40001, 40001),  # 0-based: a number is a number
    (1, "holding", 1, 0), (1, "holding", 40001, 0), (1, "holding", 49999, 9998),
    (1, "holding", 400001, 0), (1, "holding", 465536, 65535),
    (1, "input", 30001, 0), (1, "input", 300045, 44),
])
def test_wire_address(tmp_path: Path, base: int, table: str, address: int, wire: int) -> None:
    profile = load_profile(_profile(tmp_path, base, ("r", table, address)))
    assert profile.register("r").wire_address == wire


def test_a_prefix_of_another_table_is_an_error_naming_the_register(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"registers\[0\] \(level\)\.address: 30005 reads as a "
                       r"Modicon input address .* table is holding"):
        load_profile(_profile(tmp_path, 1, ("level", "holding", 30005)))
