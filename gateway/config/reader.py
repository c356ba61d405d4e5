"""Reading a site config's TOML with located problems: every problem is collected (not just the
first) with its key path, the line where it can be found and, where it helps, a hint, so
`minewatch config validate` lists them all as `file:line: key: message (hint: ...)`.

`Reader` gives typed access to one table and records a problem instead of raising; `Locator`
finds a key path's line (tomllib keeps no positions); `ConfigError` carries them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "Locator", "Problem", "Reader", "parse_duration", "table_array"]


@dataclass(frozen=True)
class Problem:
    path: str  # key path, e.g. points[2].thresholds.red
    message: str
    line: int | None = None
    hint: str = ""

    def render(self, file: Path) -> str:
        where = f"{file}:{self.line}" if self.line else f"{file}"
        text = f"{where}: {self.path}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(ValueError):
    """The config file has problems; `problems` lists all of them."""

    def __init__(self, file: Path, problems: list[Problem]):
        self.file = file
        self.problems = problems
        lines = "\n".join("  " + p.render(file) for p in problems)
        super().__init__(f"{file}: {len(problems)} problem(s) in the site config:\n{lines}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0,
                 "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as '500ms', '30s', '10min', '1h', '2d'."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    raise ValueError(f"expected a duration such as 30, '30s', '10min', '1h', got {value!r}")


class Locator:
    """Finds the line of a key path in the TOML text (best effort: tomllib keeps no positions)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line(self, path: str) -> int | None:
        parts = re.findall(r"([A-Za-z_][\w-]*)(?:\[(\d+)\])?", path)
        start, end = 0, len(self.lines)
        prefix: list[str] = []
        found: int | None = None
        for name, idx in parts:
            prefix.append(name)
            header_arr = re.compile(r"^\s*\[\[\s*" + r"\.".join(map(re.escape, prefix)) + r"\s*\]\]")
            header_tab = re.compile(r"^\s*\[\s*" + r"\.".join(map(re.escape, prefix)) + r"\s*\]")
            key_line = re.compile(r"^\s*" + re.escape(name) + r"\s*=")
            inline = re.compile(r"[{,]\s*" + re.escape(name) + r"\s*=")
            if idx:
                hits = [i for i in range(start, end) if header_arr.match(self.lines[i])]
                n = int(idx)
                if n < len(hits):
                    start = hits[n]
                    nxt = [i for i in range(start + 1, end) if re.match(r"^\s*\[\[", self.lines[i])
                           and header_arr.match(self.lines[i])]
                    end = nxt[0] if nxt else end
                    found = start + 1
                    continue
                return found
            hit = next((i for i in range(start, end) if header_tab.match(self.lines[i])), None)
            if hit is None:
                hit = next((i for i in range(start, end)
                            if key_line.match(self.lines[i]) or inline.search(self.lines[i])), None)
            if hit is None and found is None:  # a top-level table only written dotted: uplink
                dotted = re.compile(r"^\s*\[\s*" + r"\.".join(map(re.escape, prefix)) + r"\.")
                if any(dotted.match(line) for line in self.lines[start:end]):
                    continue
            if hit is None:
                return found
            found = hit + 1
            start = hit
        return found


class Reader:
    """Typed access to one TOML table that records problems instead of raising."""

    def __init__(self, problems: list[Problem], locator: Locator):
        self.problems = problems
        self.loc = locator

    def problem(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(path, message, self.loc.line(path), hint))

    def table(self, doc: dict, key: str, path: str, required: bool = False) -> dict:
        value = doc.get(key)
        if value is None:
            if required:
                self.problem(path, "missing table")
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a table, got {type(value).__name__}")
            return {}
        return value

    def known(self, doc: dict, keys: set[str], path: str) -> None:
        for k in doc:
            if k not in keys:
                close = [c for c in keys if _similar(c, k)]
                hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(keys))}"
                self.problem(f"{path}.{k}" if path else k, "unknown key", hint)

    def get(self, doc: dict, key: str, path: str, kind, default=None, required: bool = False):
        full = f"{path}.{key}" if path else key
        if key not in doc:
            if required:
                self.problem(full, "missing key")
            return default
        value = doc[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            names = " or ".join("number" if k is float else k.__name__ for k in kinds)
            self.problem(full, f"expected {names}, got {type(value).__name__} {value!r}")
            return default
        return value

    def duration(self, doc: dict, key: str, path: str, default: float | None,
                 required: bool = False) -> float | None:
        full = f"{path}.{key}" if path else key
        if key not in doc:
            if required:
                self.problem(full, "missing key")
            return default
        try:
            seconds = parse_duration(doc[key])
        except ValueError as exc:
            self.problem(full, str(exc))
            return default
        if seconds < 0:
            self.problem(full, "must not be negative")
            return default
        return seconds


def _similar(a: str, b: str) -> bool:
    if a == b:
        return False
    if a.replace("_", "") == b.replace("_", "") or a.lower() == b.lower():
        return True
    # one edit apart
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def table_array(doc: dict, key: str, r: Reader) -> list[dict]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        r.problem(key, f"expected an array of tables ([[{key}]]), got {type(value).__name__}")
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            r.problem(f"{key}[{i}]", "expected a table")
            continue
        out.append(item)
    return out
