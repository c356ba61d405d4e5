"""Every citation in the code points inside the repository, at a page, heading or requirement
that exists: `docs/<page>.md`, `docs/<page>.md#<anchor>` or `docs/requirements.md R<n>`.

A document outside the repository (the research notes or design card the project started from)
is not there for a reader of the code, so citing it is an error; so is a citation of a docs page,
heading or requirement that was renamed or removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
CODE_DIRS = ("gateway", "detectors", "firmware_sim", "benchmarks", "tests", "config")
SUFFIXES = {".py", ".toml", ".json", ".md", ".sh", ".service", ".txt"}
# the project's notes outside the repository; written so this file does not match itself. The
# real record sets beside the repository (`../shared/data`, never committed) are an input the
# real-data benchmark and its tests read, named as a path, not a document cited for a fact
OUTSIDE = re.compile(r"(?<![\w/.])(?:domain|DESIGN|STYLE)\.md\b|\.\./shared\b(?!/data)"
                     r"|/work/shar[e]d\b(?!/data)")
DOC_REF = re.compile(r"docs/([\w.-]+\.md)(?:#([\w-]+))?")
REQ_REF = re.compile(r"docs/requirements\.md,? +(R\d+(?:(?: *[-–,] *| and )R\d+)*)")
MD_LINK = re.compile(r"\]\(([\w./-]*\.md)(?:#([\w-]+))?\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        base = slug(line)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def requirement_numbers() -> set[int]:
    text = (DOCS / "requirements.md").read_text(encoding="utf-8")
    return {int(n) for n in re.findall(r"^## R(\d+) ", text, re.MULTILINE)}


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                  and "__pycache__" not in p.parts)


def problems_in(text: str, label: str, base: Path, anchors_of: dict[Path, set[str]],
                reqs: set[int], markdown: bool = False) -> list[str]:
    """Every bad citation in `text` (named `label` in the messages); `base` is the folder its
    relative Markdown links start from."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        where = f"{label}:{n}"
        for m in OUTSIDE.finditer(line):
            out.append(f"{where}: cites {m.group(0)!r}, which is outside the repository; cite docs/")
        for m in DOC_REF.finditer(line):
            out += _check(where, DOCS / m.group(1), m.group(2), anchors_of)
        for m in REQ_REF.finditer(line):
            for r in re.findall(r"R(\d+)", m.group(1)):
                if int(r) not in reqs:
                    out.append(f"{where}: docs/requirements.md has no R{r}")
        if markdown:
            for m in MD_LINK.finditer(line):
                out += _check(where, base / m.group(1), m.group(2), anchors_of)
    return out


def problems_of(path: Path, anchors_of: dict[Path, set[str]], reqs: set[int]) -> list[str]:
    return problems_in(path.read_text(encoding="utf-8", errors="replace"),
                       str(path.relative_to(ROOT)), path.parent, anchors_of, reqs,
                       markdown=path.suffix == ".md")


def _check(where: str, page: Path, anchor: str | None, anchors_of: dict[Path, set[str]]
           ) -> list[str]:
    page = page.resolve()
    if not page.is_file():
        return [f"{where}: {page.relative_to(ROOT)} does not exist"]
    if anchor is None:
        return []
    if page not in anchors_of:
        anchors_of[page] = anchors(page)
    if anchor not in anchors_of[page]:
        return [f"{where}: {page.relative_to(ROOT)} has no heading #{anchor}"]
    return []


def test_slug_matches_github() -> None:
    assert slug("### GB 39496-2020 §5.5.4") == "gb-39496-2020-554"
    assert slug("## GB/T 50493-2019") == "gbt-50493-2019"
    assert slug("## Hydrostatic level (QDY30A)") == "hydrostatic-level-qdy30a"


def test_the_checker_finds_what_it_must() -> None:
    d = "docs" + "/"  # split so that this file's own citations stay valid
    lines = ["see " + "domain" + ".md R5", d + "nope.md", d + "standards.md#no-such-clause",
             d + "requirements.md R99", d + "requirements.md R5, R11 and R3-R4",
             d + "standards.md#gb-39496-2020-554", "../" + "shared/DESIGN" + ".md",
             "[a link](nope.md)"]
    found = problems_in("\n".join(lines), "probe.md", DOCS, {}, requirement_numbers(),
                        markdown=True)
    assert [p.split(": ", 1)[0] for p in found] == [
        "probe.md:1", "probe.md:2", "probe.md:3", "probe.md:4", "probe.md:7", "probe.md:8"]
    assert "outside the repository" in found[0] and d + "nope.md does not exist" in found[1]
    assert "no heading #no-such-clause" in found[2] and "no R99" in found[3]
    assert "outside the repository" in found[4] and d + "nope.md does not exist" in found[5]


@pytest.mark.parametrize("folder", CODE_DIRS)
def test_code_cites_only_docs_that_exist(folder: str) -> None:
    anchors_of: dict[Path, set[str]] = {}
    reqs = requirement_numbers()
    found = [p for f in files(ROOT / folder) for p in problems_of(f, anchors_of, reqs)]
    assert not found, "\n".join(found)


def test_readme_and_docs_link_to_pages_and_headings_that_exist() -> None:
    anchors_of: dict[Path, set[str]] = {}
    reqs = requirement_numbers()
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    found = [p for f in pages for p in problems_of(f, anchors_of, reqs)]
    assert not found, "\n".join(found)


def test_tests_named_in_the_docs_exist() -> None:
    # requirements.md says which tests hold each requirement: a renamed test must not leave it
    # pointing at nothing
    named = {m for page in [ROOT / "README.md", *DOCS.glob("*.md")]
             for m in re.findall(r"`(tests/[\w./*-]+)`", page.read_text(encoding="utf-8"))}
    assert named
    missing = sorted(n for n in named if not list(ROOT.glob(n.rstrip("/"))))
    assert not missing, missing


def test_requirements_are_r1_to_r13() -> None:
    assert requirement_numbers() == set(range(1, 14))
