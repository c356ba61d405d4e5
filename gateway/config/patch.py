"""A config patch: a TOML document merged into the site config's text, keeping its comments
(the platform's `config` command may push a whole file or just what changes).

Tables merge key by key; a value replaces the one it names. The arrays of tables `[[buses]]`,
`[[devices]]` and `[[points]]` merge entry by entry, matched on `name`: an entry whose name is
there merges into it, a new name is added, and `delete = true` removes the entry of that name.
Other arrays are replaced whole. The result is an ordinary config text, validated like any other.

>>> base = 'a = 1\\n[[points]]\\nname = "P1"\\nthresholds = { red = 5.0 }  # design\\n'
>>> print(merge_patch(base, '[[points]]\\nname = "P1"\\nthresholds = { red = 4.5 }'), end="")
a = 1
[[points]]
name = "P1"
thresholds = { red = 4.5 }  # design
"""

from __future__ import annotations

import re
import tomllib

__all__ = ["NAMED", "PatchProblem", "merge_patch"]

NAMED = ("buses", "devices", "points")


class PatchProblem(ValueError):
    """A patch that cannot be merged: `path` is where, `line` the patch's line if known."""

    def __init__(self, path: str, message: str, line: int | None = None):
        super().__init__(message)
        self.path = path
        self.line = line


def merge_patch(text: str, patch_text: str) -> str:
    """`text` with `patch_text` merged into it (PatchProblem when the patch cannot be)."""
    import tomlkit

    try:
        patch = tomllib.loads(patch_text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise PatchProblem("", f"the patch is not valid TOML: {exc}",
                           int(m.group(1)) if m else None) from None
    doc = tomlkit.parse(text)
    _merge(doc, patch, "")
    return tomlkit.dumps(doc)


def _merge(target, patch: dict, path: str) -> None:
    for key, value in patch.items():
        here = f"{path}.{key}" if path else key
        if not path and key in NAMED:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise PatchProblem(here, f"[[{key}]] entries are tables")
            _merge_named(target, key, value)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, here)
        elif isinstance(value, dict) and path:
            target[key] = _inline(value)  # inside an entry, as the config files write them
        else:
            target[key] = value


def _merge_named(doc, key: str, entries: list[dict]) -> None:
    import tomlkit

    if key not in doc:
        doc[key] = tomlkit.aot()
    existing = doc[key]
    for k, entry in enumerate(entries):
        name = entry.get("name")
        here = f"{key}[{k}]"
        if not isinstance(name, str) or not name:
            raise PatchProblem(here, f"an entry of [[{key}]] in a patch needs its name")
        at = next((j for j, e in enumerate(existing) if e.get("name") == name), None)
        if entry.get("delete") is True:
            if at is None:
                raise PatchProblem(here, f"no {key[:-1]} {name!r} to delete")
            del existing[at]
            continue
        if "delete" in entry:
            raise PatchProblem(f"{here}.delete", "delete takes true, and removes the entry")
        if at is None:
            table = tomlkit.table()
            for field, value in entry.items():
                table[field] = _inline(value) if isinstance(value, dict) else value
            table.add(tomlkit.nl())
            existing.append(table)
        else:
            _merge(existing[at], {f: v for f, v in entry.items() if f != "name"}, here)


def _inline(value: dict):
    import tomlkit

    table = tomlkit.inline_table()
    for k, v in value.items():
        table[k] = _inline(v) if isinstance(v, dict) else v
    return table
