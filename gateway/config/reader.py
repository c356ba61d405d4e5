"""Reading a site config's TOML with located problems: every problem is collected (not just the
first) with its key path, the line where it can be found and, where it helps, a hint, so
`minewatch config validate` lists them all as `file:line: key: message (hint: ...)`.

`Reader` gives typed access to one table and records a problem instead of raising; `Locator`
finds a key path's line (tomllib keeps no positions); `ConfigError` carries them all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.i18n import Text, t

__all__ = ["ConfigError", "ConfigFileError", "DurationError", "Locator", "Problem", "Reader",
           "parse_duration", "span", "table_array"]

# no count or size the gateway takes comes near this; a larger integer is a typo or an attack
# (and SQLite, numpy and the Modbus encoder would each fail on it their own way)
INT_LIMIT = 2**53


@dataclass(frozen=True)
class Problem:
    path: str  # key path, e.g. points[2].thresholds.red; "" for the file as a whole
    message: str
    line: int | None = None
    hint: str = ""
    message_zh: str = ""
    hint_zh: str = ""

    def render(self, file: Path, lang: str = "en") -> str:
        where = f"{file}:{self.line}" if self.line else f"{file}"
        key = f"{self.path}: " if self.path else ""
        if lang == "zh":
            text = f"{where}: {key}{self.message_zh or self.message}"
            hint = self.hint_zh or self.hint
            return f"{text}（提示：{hint}）" if hint else text
        text = f"{where}: {key}{self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(ValueError):
    """The config file has problems; `problems` lists all of them."""

    def __init__(self, file: Path, problems: list[Problem], encoding: str = "utf-8"):
        self.file = file
        self.problems = problems
        self.encoding = encoding
        super().__init__(self.render("en"))

    def render(self, lang: str = "en") -> str:
        """Every problem on its own line under a summary, in `lang` (zh or en)."""
        note = "" if self.encoding in ("utf-8", "utf-8 with BOM") else (
            f"（按 {self.encoding.upper()} 读取）" if lang == "zh"
            else f" (read as {self.encoding.upper()})")
        head = (f"{self.file}{note}：站点配置中有 {len(self.problems)} 个问题：" if lang == "zh"
                else f"{self.file}{note}: {len(self.problems)} problem(s) in the site config:")
        return "\n".join([head] + ["  " + p.render(self.file, lang) for p in self.problems])


class ConfigFileError(ConfigError):
    """The config file itself cannot be had (missing, a folder, no permission): no problem in
    it, so none is counted; `reason` says why in both languages."""

    def __init__(self, file: Path, reason: Text, hint: Text | None = None):
        self.reason = reason
        self.hint = hint
        super().__init__(file, [])

    def render(self, lang: str = "en") -> str:
        if lang == "zh":
            text = f"{self.file}：{self.reason.zh}"
            return f"{text}（提示：{self.hint.zh}）" if self.hint else text
        text = f"{self.file}: {self.reason.en}"
        return f"{text} (hint: {self.hint.en})" if self.hint else text


class DurationError(ValueError):
    """A value that is not a duration the gateway can use; `text` says why in both languages."""

    def __init__(self, text: Text):
        self.text = text
        super().__init__(text.en)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0,
                 "h": 3600.0, "d": 86400.0}
LONGEST = 10 * 365 * 86400.0  # no duration of the gateway is longer than ten years


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as '500ms', '30s', '10min', '1h', '2d'.

    Infinite, longer than ten years, or shorter than a millisecond but not zero: DurationError
    (the gateway keeps time to the millisecond, and nothing it waits for takes a decade).

    >>> parse_duration("10min"), parse_duration(0.5)
    (600.0, 0.5)
    >>> parse_duration("0.001ms")
    Traceback (most recent call last):
    gateway.config.reader.DurationError: 1e-06 s is shorter than a millisecond, the gateway's resolution
    """
    if isinstance(value, bool):
        raise DurationError(t(f"expected a duration, got {value!r}",
                              f"应为时长，实际为 {value!r}"))
    seconds: float | None = None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds is None:
        raise DurationError(t(f"expected a duration such as 30, '30s', '10min', '1h', got "
                              f"{value!r}",
                              f"应为时长，例如 30、'30s'、'10min'、'1h'，实际为 {value!r}"))
    if math.isnan(seconds) or math.isinf(seconds):
        raise DurationError(t(f"{value!r} is not a duration the gateway can wait",
                              f"{value!r} 不是网关能等待的时长"))
    if abs(seconds) > LONGEST:
        raise DurationError(t(f"{value!r} is longer than ten years",
                              f"{value!r} 超过十年"))
    if 0 < abs(seconds) < 0.001:
        raise DurationError(t(f"{seconds:g} s is shorter than a millisecond, the gateway's "
                              "resolution",
                              f"{seconds:g} 秒短于 1 毫秒（网关的时间分辨率）"))
    return seconds


def span(seconds: float) -> str:
    """A duration as a config would write it: 0.5 -> '500ms', 600 -> '10min', 90 -> '90s'.

    >>> span(0.5), span(600), span(90), span(86400 * 7), span(0)
    ('500ms', '10min', '90s', '7d', '0s')
    """
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


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
            # [uplink], [uplink.mqtt] or [[uplink.mqtt]] all hold what uplink.* names
            header_tab = re.compile(r"^\s*\[\[?\s*" + r"\.".join(map(re.escape, prefix))
                                    + r"\s*[\].]")
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
    """Typed access to one TOML table that records problems instead of raising. Every message
    goes in as a `Text` (English and Chinese side by side); every number it hands back is
    finite and within the range the key allows."""

    def __init__(self, problems: list[Problem], locator: Locator):
        self.problems = problems
        self.loc = locator

    def problem(self, path: str, message: Text | str, hint: Text | str = "") -> None:
        msg = message if isinstance(message, Text) else Text(message, "")
        tip = hint if isinstance(hint, Text) else Text(hint or "", "")
        self.problems.append(Problem(path, msg.en, self.loc.line(path), tip.en, msg.zh, tip.zh))

    def table(self, doc: dict, key: str, path: str, required: bool = False) -> dict:
        value = doc.get(key)
        if value is None:
            if required:
                self.problem(path, t("missing table", "缺少该表"),
                             t(f"add a [{path}] section", f"请添加 [{path}] 一节"))
            return {}
        if not isinstance(value, dict):
            self.problem(path, t(f"expected a table, got {_kind(value)}",
                                 f"应为表（table），实际为{_kind_zh(value)}"))
            return {}
        return value

    def known(self, doc: dict, keys: set[str], path: str) -> None:
        for k in doc:
            if k not in keys:
                close = [c for c in keys if _similar(c, k)]
                hint = (t(f"did you mean '{close[0]}'?", f"是否应为 '{close[0]}'？") if close else
                        t(f"known keys: {', '.join(sorted(keys))}",
                          f"可用的键：{', '.join(sorted(keys))}"))
                self.problem(f"{path}.{k}" if path else k, t("unknown key", "未知的键"), hint)

    def get(self, doc: dict, key: str, path: str, kind, default=None, required: bool = False):
        full = f"{path}.{key}" if path else key
        if key not in doc:
            if required:
                self.problem(full, t("missing key", "缺少该键"))
            return default
        value = doc[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        numeric = isinstance(value, int) and not isinstance(value, bool)
        if numeric and (int in kinds or float in kinds) and abs(value) > INT_LIMIT:
            self.problem(full, t(f"{_big(value)} is too large", f"{_big(value, True)}过大"))
            return default
        if float in kinds and numeric:
            value, ok = float(value), True
        if not ok:
            names = " or ".join(_KIND_EN.get(k, k.__name__) for k in kinds)
            names_zh = "或".join(_KIND_ZH.get(k, k.__name__) for k in kinds)
            self.problem(full, t(f"expected {names}, got {_kind(value)} {_short(value)}",
                                 f"应为{names_zh}，实际为{_kind_zh(value)} {_short(value)}"))
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(full, t(f"must be a finite number, got {value!r}",
                                 f"必须是有限的数，实际为 {value!r}"))
            return default
        return value

    def number(self, doc: dict, key: str, path: str, default, lo: float, hi: float,
               integer: bool = False, required: bool = False, unit: str = ""):
        """An integer (`integer`) or a finite number within lo..hi (both allowed); the problem
        names the allowed range."""
        value = self.get(doc, key, path, int if integer else float, None, required)
        if value is None:
            return default
        if not lo <= value <= hi:
            full = f"{path}.{key}" if path else key
            u = f" {unit}" if unit else ""
            self.problem(full, t(f"{_num(value)} is out of range: allowed {_num(lo)} to "
                                 f"{_num(hi)}{u}",
                                 f"{_num(value)} 超出允许范围 {_num(lo)} 至 {_num(hi)}{u}"))
            return default
        return value

    def duration(self, doc: dict, key: str, path: str, default: float | None,
                 required: bool = False, lo: float = 0.0, hi: float = LONGEST
                 ) -> float | None:
        """Seconds (a number or '10min') within lo..hi; the problem names the allowed range."""
        full = f"{path}.{key}" if path else key
        if key not in doc:
            if required:
                self.problem(full, t("missing key", "缺少该键"))
            return default
        try:
            seconds = parse_duration(doc[key])
        except DurationError as exc:
            self.problem(full, exc.text, t(f"allowed {span(lo)} to {span(hi)}",
                                           f"允许范围 {span(lo)} 至 {span(hi)}"))
            return default
        if seconds < 0:
            self.problem(full, t("must not be negative", "不能为负"))
            return default
        if not lo <= seconds <= hi:
            self.problem(full, t(f"{span(seconds)} is out of range: allowed {span(lo)} to "
                                 f"{span(hi)}",
                                 f"{span(seconds)} 超出允许范围 {span(lo)} 至 {span(hi)}"))
            return default
        return seconds


_KIND_EN = {str: "text", int: "integer", float: "number", bool: "true or false", list: "list",
            dict: "table"}
_KIND_ZH = {str: "文本", int: "整数", float: "数", bool: "true 或 false", list: "列表",
            dict: "表"}


def _kind(value: Any) -> str:
    return _KIND_EN.get(type(value), type(value).__name__)


def _kind_zh(value: Any) -> str:
    return _KIND_ZH.get(type(value), type(value).__name__)


def _big(value: int, zh: bool = False) -> str:
    """A huge integer by its size, not its digits."""
    digits = len(str(abs(value)))
    return f"一个 {digits} 位的整数" if zh else f"a {digits}-digit integer"


def _short(value: Any) -> str:
    """A value as a message quotes it, cut short when long (a whole table pasted by mistake)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
        r.problem(key, t(f"expected an array of tables ([[{key}]]), got {_kind(value)}",
                         f"应为表数组（[[{key}]]），实际为{_kind_zh(value)}"))
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            r.problem(f"{key}[{i}]", t("expected a table", "应为表（table）"))
            continue
        out.append(item)
    return out
