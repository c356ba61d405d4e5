"""Config problems as data: each folder of tests/cases/ with an `expected_error.txt` is a site
config that `minewatch config validate` must refuse with exactly that text; one with an
`expected_ok.txt` is one it must accept, saying that text (a GBK or UTF-16 file, say, and how
it was read).

The text is compared line by line after the site file's path is shortened to `site.toml`: the
output has as many lines as the file (so no problem more or less), and each line of the file is
found in its line of the output (so a line may pin a whole message or the part that matters).
The `--json` form of the same command must list the same problems, in both languages. A
folder may also hold `expected_error.zh.txt` (or `expected_ok.zh.txt`), the same check for
`--lang zh` placed before the subcommand, as `minewatch --lang zh config validate` is typed;
without it the Chinese output must still have one line per problem, each with Chinese in it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway.cli import main
from tests.support.cases import EXPECTED, case_file, case_folders, cases_with

ERROR_CASES = cases_with("expected_error.txt")
OK_CASES = cases_with("expected_ok.txt")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _printed(argv: list[str], site: Path, code: int, capsys, stream: str = "err") -> list[str]:
    assert main(argv) == code
    out = getattr(capsys.readouterr(), stream)
    # the case's own folder too: files a config names (a secret, a certificate) are shown by
    # their full path
    out = out.replace(str(site), "site.toml").replace(str(site.parent) + "/", "")
    return [line.strip() for line in out.splitlines() if line.strip()]


def _expected(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _match(got: list[str], want: list[str]) -> None:
    assert len(got) == len(want), "\n".join(got)
    for g, w in zip(got, want, strict=True):
        assert w in g, f"expected {w!r}\n     in {g!r}"


def test_every_case_folder_says_what_it_expects() -> None:
    for folder in case_folders():
        assert (folder / "site.toml").is_file() or (folder / "validate.txt").is_file(), \
            f"{folder}: no site.toml"
        held = [name for name in EXPECTED if (folder / name).is_file()]
        assert len(held) == 1, f"{folder}: needs exactly one of {EXPECTED}, has {held}"
    assert len(ERROR_CASES) >= 35 and len(OK_CASES) >= 3


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.name for c in ERROR_CASES])
def test_config_validate_prints_the_expected_error(case: Path, capsys) -> None:
    site = case_file(case)
    got = _printed(["config", "validate", str(site), "--lang", "en"], site, 2, capsys)
    _match(got, _expected(case / "expected_error.txt"))
    assert "Traceback" not in "\n".join(got)

    assert main(["config", "validate", str(site), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and len(doc["problems"]) == len(got) - 1
    for problem, line in zip(doc["problems"], got[1:], strict=True):
        where = f"site.toml:{problem['line']}: " if problem["line"] else "site.toml: "
        key = f"{problem['key']}: " if problem["key"] else ""
        message = problem["message"].replace(str(site.parent) + "/", "")
        assert line.startswith(where + key + message), (problem, line)
        assert CJK.search(problem["message_zh"]), problem
        assert bool(problem["hint"]) == bool(problem["hint_zh"]), problem

    zh = _printed(["--lang", "zh", "config", "validate", str(site)], site, 2, capsys)
    if (case / "expected_error.zh.txt").is_file():
        _match(zh, _expected(case / "expected_error.zh.txt"))
    assert len(zh) == len(got) and all(CJK.search(line) for line in zh), "\n".join(zh)


@pytest.mark.parametrize("case", OK_CASES, ids=[c.name for c in OK_CASES])
def test_config_validate_accepts_and_says_how_it_read_the_file(case: Path, capsys) -> None:
    site = case_file(case)
    got = _printed(["config", "validate", str(site), "--lang", "en"], site, 0, capsys, "out")
    _match(got, _expected(case / "expected_ok.txt"))
    zh = _printed(["config", "validate", str(site), "--lang", "zh"], site, 0, capsys, "out")
    if (case / "expected_ok.zh.txt").is_file():
        _match(zh, _expected(case / "expected_ok.zh.txt"))
    assert main(["config", "validate", str(site), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True
    if doc["encoding"] not in ("utf-8", "utf-8 with BOM"):  # said beside the file's name
        assert f"read as {doc['encoding'].upper()}" in got[0], (doc["encoding"], got[0])
