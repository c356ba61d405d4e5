"""Reading logger exports for `minewatch replay`: what field loggers really write, row by row.

A file is decoded as UTF-8 (with or without BOM; UTF-16 when it has a UTF-16 BOM, as Excel's
"Unicode text" export does), else as GB18030 (a superset of GBK, what Chinese loggers and Excel
write), and the report says which. The separator is sniffed among tab, ';' and ',' (`sep`
overrides). The first non-empty line is the header unless its first cell is already a time;
then the columns are named by position (the time is column 0). With ';' or tab separators a
decimal comma (`1,25`) is read as a decimal point.

Times: the forms of `gateway.replay_times` (ISO 8601 and its logger relatives, date-only,
day- or month-first, compact, epoch s or ms, Excel serial days). Naive times are in `tz`; a
naive time that repeats in a DST fall-back is put in the second pass of the hour when it would
otherwise step back.

Missing values: an empty cell, `nan`, `null`, `none`, `na`, `n/a`, `#n/a`, `-`, `--`, `---`,
`nil` and Excel's error values (`#VALUE!`, `#DIV/0!` ...), any case. Numeric sentinels such as
-9999 or -99999 are missing only when named (`missing=`, the CLI's `--missing`): a number is a
reading unless the user says otherwise, and an implausible one is the stuck/plausible checks'
job (a fault), not silently dropped.

Rows that cannot be read are skipped, counted and the first few named with their line numbers:
no time, a time out of 1970..2200, a value that is not a number, more non-empty fields than the
header or fewer than the columns read need. Time order, the rule: rows go through in file order
and one whose time is earlier than the latest row kept is dropped (counted, with where the clock
stepped back and by how much), until the times pass it again. Replay is causal like the live
gateway, whose detectors and alert engine only move forward; sorting would interleave the two
overlapping stretches into a zigzag the detectors would take for noise or spikes, while dropping
keeps the series as first recorded and loses only the overlap, which is reported. A file written
newest first is reversed first. A row with the same time as the previous one is merged into it
(its cells fill the earlier row's missing ones; the earlier values win) and counted.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from gateway.i18n import Text
from gateway.replay_times import TimeColumn, epoch
from gateway.text_files import TextFileError, read_text_file

__all__ = ["ReplayError", "InputReport", "read_export", "MISSING_MARKERS"]


class ReplayError(ValueError):
    """The input cannot be replayed; the message names the file, the row or the column, and
    `text` says it in both languages."""

    def __init__(self, text: Text | str):
        self.text = text if isinstance(text, Text) else Text(text, text)
        super().__init__(self.text.en)

    def render(self, lang: str = "en") -> str:
        return self.text.in_lang(lang)


MISSING_MARKERS = frozenset({"", "nan", "-nan", "null", "none", "na", "n/a", "#n/a", "-", "--",
                             "---", "nil", "#value!", "#div/0!", "#ref!", "#num!", "#name?",
                             "#null!", "#n/a n/a"})
EXAMPLES = 5  # bad rows and clock steps named in the report
_T_MIN, _T_MAX = 0.0, 7_258_118_400.0  # 1970-01-01 .. 2200-01-01 UTC


@dataclass
class InputReport:
    """What reading the export did, for the summary and for stderr."""

    path: str
    encoding: str = "utf-8"
    separator: str = ","
    header: bool = True
    time_form: str = "iso"
    reversed: bool = False
    lines: int = 0  # non-empty lines after the header
    rows: int = 0  # rows kept
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    step_backs: int = 0  # times the clock went back
    stepped_back_rows: int = 0  # rows dropped because of it
    step_examples: list[str] = field(default_factory=list)
    dst_repeats: int = 0  # rows placed in the repeated hour of a DST fall-back (kept)
    duplicates: int = 0  # rows merged into the previous row of the same time
    missing_cells: int = 0
    decimal_comma: int = 0  # cells read with a decimal comma
    period_s: float = float("nan")  # median step between kept rows
    gaps: int = 0  # steps longer than 3 periods
    largest_gap_s: float = 0.0

    def warnings(self) -> list[str]:
        """One line per thing a user should know about the file, empty when it was clean."""
        out = []
        if self.encoding not in ("utf-8", "utf-8 with BOM"):
            out.append(f"{self.path}: read as {self.encoding}")
        if self.reversed:
            out.append(f"{self.path}: written newest first; read in time order")
        if self.bad_rows:
            out.append(f"{self.path}: {self.bad_rows} row(s) skipped: "
                       + "; ".join(self.bad_examples)
                       + (" ..." if self.bad_rows > len(self.bad_examples) else ""))
        if self.step_backs:
            out.append(f"{self.path}: the time stepped back {self.step_backs} time(s); "
                       f"{self.stepped_back_rows} row(s) earlier than a row already read were "
                       "dropped (replay only moves forward): " + "; ".join(self.step_examples))
        if self.dst_repeats:
            out.append(f"{self.path}: {self.dst_repeats} row(s) in the repeated hour of a DST "
                       "change were read as the second pass of that hour")
        if self.duplicates:
            out.append(f"{self.path}: {self.duplicates} row(s) repeated the previous row's time "
                       "and were merged into it")
        if "assumed" in self.time_form:
            out.append(f"{self.path}: dates read {self.time_form}")
        if self.gaps:
            out.append(f"{self.path}: {self.gaps} gap(s) longer than 3 sample periods "
                       f"({_span(self.period_s)}), the largest {_span(self.largest_gap_s)}")
        return out

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("period_s", "largest_gap_s"):
            d[k] = None if not math.isfinite(d[k]) else round(d[k], 3)
        return d


def _iso(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).isoformat(sep=" ")


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _split(line: str, sep: str) -> list[str]:
    """One line's fields; a stray quote never swallows the lines after it."""
    try:
        return [c.strip() for c in next(csv.reader((line,), delimiter=sep))]
    except (csv.Error, StopIteration):
        return [c.strip() for c in line.split(sep)]


def _sniff(lines: list[str]) -> str:
    """The separator whose field count is most consistent (and above one) over the first lines;
    ties go to tab, then ';' (a ';' file may hold decimal commas), then ','."""
    best, best_score = ",", -1.0
    for sep in ("\t", ";", ","):
        counts = [len(_split(line, sep)) for line in lines[:50]]
        if not counts or max(counts) < 2:
            continue
        mode = max(set(counts), key=counts.count)
        score = counts.count(mode) / len(counts) if mode > 1 else 0.0
        if score > best_score + 1e-9:
            best, best_score = sep, score
    return best


def _number(cell: str, comma: bool) -> float | None:
    """The cell's value, NaN for a missing marker, None when it is not a number."""
    if cell.lower() in MISSING_MARKERS:
        return math.nan
    try:
        v = float(cell)
    except ValueError:
        if comma and cell.count(",") == 1 and "." not in cell:
            try:
                v = float(cell.replace(",", "."))
            except ValueError:
                return None
        else:
            return None
    return v if math.isfinite(v) else None


def read_export(path: Path, columns: list[str] | None = None, sep: str | None = None,
                tz: ZoneInfo | str = "Asia/Shanghai", missing: list[str] | None = None
                ) -> tuple[np.ndarray, list[str], np.ndarray, InputReport]:
    """(t float64[m], column names, x float64[m, c], report) from a logger export whose first
    column is the time. ReplayError (naming the file and the column) when nothing usable is
    left: no data rows, an unknown column, no value column."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    try:
        # lenient: a bad byte costs its row (skipped and named), not the file
        file = read_text_file(path, lenient=True)
    except TextFileError as exc:
        raise ReplayError(Text(exc.render("en"), exc.render("zh"))) from None
    report = InputReport(path=str(path), encoding=file.encoding)
    numbered = [(i + 1, line) for i, line in enumerate(file.text.splitlines()) if line.strip()]
    if not numbered:
        raise ReplayError(Text(f"{path}: empty file", f"{path}：空文件"))
    sep = sep or _sniff([line for _, line in numbered])
    report.separator = sep
    comma = sep != ","
    first = _split(numbered[0][1], sep)
    probe = TimeColumn([first[0]], zone)
    headless = probe.naive_or_aware(first[0]) is not None and all(
        _number(c, comma) is not None for c in first[1:])
    if headless:
        header = [str(k) for k in range(len(first))]
        body = numbered
    else:
        header = [h or str(k) for k, h in enumerate(first)]
        body = numbered[1:]
    report.header = not headless
    for k, h in enumerate(header):  # duplicated names get a suffix: points need unique names
        if h in header[:k]:
            header[k] = f"{h}#{k}"
    names = list(columns) if columns else header[1:]
    unknown = [c for c in names if c not in header[1:]]
    if unknown:
        raise ReplayError(Text(f"{path}: no column(s) {unknown}; the header has {header}"
                            + (" (no header line: columns are named by position, the time is 0)"
                               if headless else ""),
                            f"{path}：没有列 {unknown}；表头为 {header}"
                            + ("（没有表头行：各列按位置编号，时间列为 0）" if headless else "")))
    if not names:
        raise ReplayError(Text(f"{path}: no value column after the time column {header[0]!r}",
                            f"{path}：时间列 {header[0]!r} 之后没有数值列"))
    cols = [header.index(c) for c in names]
    need = max(cols) + 1
    extra_missing = {m.strip().lower() for m in (missing or [])}
    extra_numbers = {v for v in (_number(m, False) for m in extra_missing) if v is not None}

    split = [(n, _split(line, sep)) for n, line in body]
    times = TimeColumn([cells[0] for _, cells in split if cells], zone)
    report.time_form = times.form
    report.lines = len(split)

    def bad(n: int, why: str) -> None:
        report.bad_rows += 1
        if len(report.bad_examples) < EXAMPLES:
            report.bad_examples.append(f"line {n}: {why}")

    parsed: list[tuple[int, datetime | float, list[float]]] = []
    for n, cells in split:
        if len(cells) > len(header) and any(cells[len(header):]):
            bad(n, f"{len(cells)} fields, the header has {len(header)}")
            continue
        if len(cells) < need:
            bad(n, f"{len(cells)} field(s), column {names[cols.index(max(cols))]!r} needs {need}")
            continue
        when = times.naive_or_aware(cells[0])
        if when is None:
            bad(n, f"time {cells[0][:40]!r} is not a time")
            continue
        values, why = [], ""
        for k, c in zip(names, cols, strict=True):
            cell = cells[c]
            v = math.nan if cell.lower() in extra_missing else _number(cell, comma)
            if v is None:
                why = f"column {k!r}: {cell[:40]!r} is not a number"
                break
            if v in extra_numbers:
                v = math.nan
            if comma and "," in cell and math.isfinite(v):
                report.decimal_comma += 1
            values.append(v)
        if why:
            bad(n, why)
            continue
        parsed.append((n, when, values))

    probe_t = []
    for _, when, _ in parsed[:2000]:
        try:
            probe = epoch(when, zone)
        except (OverflowError, ValueError, OSError):
            continue
        if math.isfinite(probe):  # (a time read as infinite is refused per row below)
            probe_t.append(probe)
    if len(probe_t) > 2 and (np.diff(probe_t) < 0).sum() * 2 > len(probe_t) - 1:
        parsed.reverse()
        report.reversed = True

    t_out: list[float] = []
    x_out: list[list[float]] = []
    last = -math.inf
    stepping = False
    for n, when, values in parsed:
        try:
            t = epoch(when, zone)
            if t < last and isinstance(when, datetime) and when.tzinfo is None:
                t1 = epoch(when, zone, fold=1)
                if t1 != t and t1 >= last:  # the second pass of a DST fall-back hour
                    t = t1
                    report.dst_repeats += 1
        except (OverflowError, ValueError, OSError):
            bad(n, f"time {str(when)[:40]!r} cannot be placed in {zone.key}")
            continue
        if not _T_MIN < t < _T_MAX:
            bad(n, f"time {str(when)[:40]!r} is outside 1970..2200")
            continue
        if t < last:
            report.stepped_back_rows += 1
            if not stepping:
                report.step_backs += 1
                if len(report.step_examples) < EXAMPLES:
                    report.step_examples.append(
                        f"line {n}: {_iso(last, zone)} -> {_iso(t, zone)} ({last - t:g} s back)")
            stepping = True
            continue
        stepping = False
        if t == last:
            report.duplicates += 1
            row = x_out[-1]
            for k, v in enumerate(values):
                if math.isnan(row[k]):
                    row[k] = v
            continue
        t_out.append(t)
        x_out.append(values)
        last = t
    if not t_out:
        first = f": {report.bad_examples[0]}" if report.bad_examples else ""
        raise ReplayError(Text(f"{path}: no usable data rows ({report.lines} line(s) read, "
                            f"{report.bad_rows} unreadable{first})",
                            f"{path}：没有可用的数据行（读了 {report.lines} 行，{report.bad_rows} "
                            f"行无法读取{first}）"))
    if report.duplicates > len(t_out):  # e.g. a year alone, read as epoch seconds
        raise ReplayError(Text(
            f"{path}: the time column {header[0]!r} repeats the previous row's value on "
            f"{report.duplicates} of {report.lines} rows; is it a time? (the first column must "
            "be a date and time, epoch s or ms, or Excel serial days)",
            f"{path}：时间列 {header[0]!r} 在 {report.lines} 行中有 {report.duplicates} 行与上一行"
            "相同；它是时间吗？（第一列必须是日期时间、以秒或毫秒计的时间戳，或 Excel 序列日期）"))
    t_arr = np.asarray(t_out, dtype=np.float64)
    x_arr = np.asarray(x_out, dtype=np.float64).reshape(len(t_out), len(names))
    report.rows = len(t_out)
    report.missing_cells = int(np.isnan(x_arr).sum())
    if t_arr.size > 1:
        steps = np.diff(t_arr)
        report.period_s = float(np.median(steps))
        long = steps > 3 * report.period_s
        report.gaps = int(long.sum())
        report.largest_gap_s = float(steps.max()) if report.gaps else 0.0
    return t_arr, names, x_arr, report
