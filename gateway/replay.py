"""`minewatch replay`: what the gateway would have said about an exported series.

Field engineers run it on exports from old data loggers. It runs the live path's own stages,
causally, row by row: the detect stage (the same kernels and detector sets) and the alert engine
(the same events, ids and gap-free seq, committed to a throw-away outbox), so a replay of a
scenario gives the events the live gateway gave. Input: a logger export, a time column then
value columns, read by `gateway.replay_input` (encodings, separators, time forms, missing
markers, bad rows, clocks that step back: see there; naive times are in `--tz`); what reading
did is in the summary's `input` and, when it matters, on stderr. Output: one row per input row with each
channel's value, score (the largest over its detectors) and grade, or with `--long` one row per
input row, channel and detector with that detector's evidence; `--plot` draws the series with
grade bands and events. `--sidecar` takes each column's quantity from a `firmware-sim generate`
sidecar (`{"columns": {"<name>": {"quantity": ..., "unit": ...}}}`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from gateway.i18n import Text
from gateway.replay_input import InputReport, ReplayError, read_export
from gateway.text_files import TextFileError, read_text_file
from gateway.verdict import Verdict, combine, merge_quality

__all__ = ["sidecar_site_config", "replay", "replay_arrays", "ReplayResult", "read_series", "read_export",
           "read_sidecar", "add_replay_arguments", "ReplayError", "InputReport"]


def read_series(path: Path, columns: list[str] | None, sep: str | None, tz: ZoneInfo | str
                ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(t float64[m], column names, x float64[m, c]) of an export (`read_export` without its
    report)."""
    t, names, x, _ = read_export(path, columns, sep, tz)
    return t, names, x


def read_sidecar(path: Path, names: list[str]) -> dict[str, str]:
    """Column → quantity from a `firmware-sim generate` sidecar; every column must be in it."""
    meta = _read_json(path)
    try:
        columns = meta["columns"]
        quantities = {name: str(columns[name]["quantity"]) for name in names if name in columns}
    except (KeyError, TypeError) as exc:
        raise ReplayError(Text(f"{path}: not a sidecar with columns.<name>.quantity (no {exc})",
                               f"{path}：不是含 columns.<列名>.quantity 的附带文件（缺少 {exc}）")
                          ) from None
    missing = [n for n in names if n not in quantities]
    if missing:
        raise ReplayError(Text(f"{path}: no quantity for column(s) {missing}",
                               f"{path}：列 {missing} 没有监测量"))
    return quantities


def _read_json(path: Path):
    """A JSON file read as every text file is (gateway/text_files.py); ReplayError with the
    line and column of a syntax error."""
    try:
        file = read_text_file(path)
    except TextFileError as exc:
        raise ReplayError(Text(exc.render("en"), exc.render("zh"))) from None
    try:
        return json.loads(file.text)
    except json.JSONDecodeError as exc:
        raise ReplayError(Text(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}",
                               f"{path}:{exc.lineno}:{exc.colno}：不是有效的 JSON：{exc.msg}")
                          ) from None
    except RecursionError:
        raise ReplayError(Text(f"{path}: not JSON: nested too deeply",
                               f"{path}：不是有效的 JSON：嵌套过深")) from None


def sidecar_site_config(path: Path, names: list[str]) -> Path | None:
    """The site config a `firmware-sim generate` sidecar names, when it is there and has every
    column as a point (else None: the columns are graded by their quantities' defaults)."""
    from gateway.config import ConfigError, load_site

    try:
        site = _read_json(path).get("site_config")
    except (ReplayError, AttributeError):
        return None
    if not isinstance(site, str):
        return None
    if not site:
        return None
    site_path = Path(site) if Path(site).is_absolute() else path.parent / site
    try:
        points = {p.name for p in load_site(site_path).points}
    except (ConfigError, OSError):
        return None
    return site_path if set(names) <= points else None


def _site_text(quantities: dict[str, str], period_s: float) -> str:
    """A site config of one never-polled device whose channels carry the replayed columns; the
    device's period is the export's own sample period (what its detectors are told)."""
    from gateway.profiles import default_profile_dirs

    period = min(max(round(period_s), 1), 86400) if math.isfinite(period_s) else 60
    lines = ['[site]\ncode = "REPLAY"\nkind = "tailings_pond"\n',
             '[gateway]\nid = "replay"\nlisten = "off"\n',
             '[[buses]]\nname = "none"\nhost = "127.0.0.1"\nport = 1\n',
             '[[devices]]\nname = "replay"\nbus = "none"\nunit = 1\n'
             f'profile = "analog_input_64ch"\nperiod = "{period}s"\n']
    for k, (name, quantity) in enumerate(quantities.items()):
        # a JSON string is a TOML basic string: any column name (quotes, Chinese) stays itself;
        # but for DEL, which JSON leaves raw and TOML refuses (found by tests/unit/test_replay_fuzz)
        toml_name = json.dumps(name, ensure_ascii=False).replace("\x7f", "\\u007f")
        lines.append(f'[[points]]\nname = {toml_name}\n'
                     f'quantity = {json.dumps(quantity)}\ndevice = "replay"\n'
                     f'channel = "ai{k + 1}"\n')
    profiles = json.dumps(str(default_profile_dirs()[0]), ensure_ascii=False)
    return f"profiles_dir = {profiles}\n" + "\n".join(lines)


_LONG_HEADER = ["timestamp", "channel", "value", "detector", "score", "grade", "fault",
                "evidence"]


def _grade_rows(engine, t, idx, x, combined, quality, parts) -> None:
    """Feed the alert engine row by row, skipping the rows on which it provably does nothing:
    while it is quiet (its levels equal the grades, nothing pending, no open fault and no run of
    bad samples counting toward one) a row with the previous row's grades and good quality
    makes no event and changes no state."""
    grade = combined.grade
    m = t.shape[0]
    if m == 0:
        return
    moved = np.ones(m, np.bool_)
    moved[1:] = (grade[1:] != grade[:-1]).any(axis=1)
    moved |= (quality != 0).any(axis=1)
    wake = np.flatnonzero(moved)
    r = 0
    while r < m:
        verdict = Verdict(combined, quality[r], parts, row=r)
        engine.process(float(t[r]), idx, x[r], quality[r], verdict)
        quiet = (np.array_equal(engine.level[idx], grade[r])
                 and not np.isfinite(engine.pending_since[idx]).any()
                 and not engine.fault[idx].any() and not engine.bad_run[idx].any())
        if not quiet:
            r += 1
            continue
        k = np.searchsorted(wake, r + 1)
        r = int(wake[k]) if k < wake.size else m


def _write_long(out_path: Path, t: np.ndarray, names: list[str], x: np.ndarray, parts: list,
                zone: ZoneInfo) -> None:
    """One row per input row, channel and detector: its own score, grade, fault and evidence
    (JSON), in input order."""
    m = t.shape[0]
    with out_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "channel", "value", "detector", "score", "grade", "fault",
                    "evidence"])
        for r in range(m):
            stamp = datetime.fromtimestamp(t[r], zone).isoformat()
            for k, name in enumerate(names):
                v = x[r, k]
                value = "" if math.isnan(v) else repr(float(v))
                for part in parts:
                    hit = np.flatnonzero(part.cols == k)
                    if not hit.size:
                        continue
                    p = int(hit[0])
                    evidence = {e: (None if math.isnan(float(a)) else round(float(a), 6))
                                for e, a in zip(part.evidence_names, part.evidence[r, p],
                                                strict=True)}
                    w.writerow([stamp, name, value, part.name, f"{float(part.score[r, p]):.4f}",
                                int(part.grade[r, p]), int(part.fault[r, p]),
                                json.dumps(evidence, separators=(",", ":"))])


@dataclass
class ReplayResult:
    """Per row and channel of a replay: the combined score (the largest over the channel's
    detectors), grade, fault and quality code as the live path would have had them, and the
    events the alert engine committed, in seq order."""

    t: np.ndarray  # float64[m], epoch s
    names: list[str]
    x: np.ndarray  # float64[m, c]
    score: np.ndarray  # float32[m, c] in [0, 1]
    grade: np.ndarray  # int8[m, c], 0 none .. 4 red
    fault: np.ndarray  # uint8[m, c], the detectors' fault code (0 none)
    quality: np.ndarray  # uint8[m, c], 0 good, else the quality code the engine saw
    events: list[dict]
    parts: list  # per detector: a gateway.verdict.Part over the columns it serves, for --long
    notes: list = dataclasses.field(default_factory=list)  # what detectors cannot judge here


def replay_arrays(t: np.ndarray, names: list[str], x: np.ndarray, *,
                  config: Path | object | None = None, quantities: dict[str, str] | None = None,
                  quantity: str = "generic", period_s: float | None = None,
                  where: str = "replay") -> ReplayResult:
    """Run rows (t[m] strictly increasing epoch seconds, x[m, c] with NaN for no reading)
    through the detect stage and the alert engine, without any file. The channels are the
    points of `config` (a site config path or a loaded SiteConfig) named `names`, or else the
    points of a one-device site whose columns measure `quantities[name]` (default: `quantity`),
    polled every `period_s` (default: the median step of t) with the default detectors and no
    thresholds. `where` names the input in errors."""
    from gateway.alerts.engine import AlertEngine
    from gateway.config import load_site
    from gateway.detect import DetectStage
    from gateway.outbox import Outbox

    t = np.ascontiguousarray(t, dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float64).reshape(t.shape[0], len(names))
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ReplayError(Text(f"{where}: times must increase strictly (read_export orders them)",
                               f"{where}：时间必须严格递增"))
    with tempfile.TemporaryDirectory(prefix="minewatch-replay-") as work:
        if config is not None:
            cfg = load_site(config) if isinstance(config, str | Path) else config
            known = {p.name: p.index for p in cfg.points}
            missing = [n for n in names if n not in known]
            if missing:
                site = getattr(cfg, "path", None) or config
                raise ReplayError(Text(f"{where}: column(s) {missing} are not points of {site}; "
                                       f"its points: {', '.join(known)}",
                                       f"{where}：列 {missing} 不是 {site} 中的测点；其测点为："
                                       f"{', '.join(known)}"))
            idx = np.array([known[n] for n in names], dtype=np.int64)
        else:
            if len(names) > 64:
                raise ReplayError(Text(f"{where}: at most 64 columns without --config",
                                       f"{where}：不带 --config 时最多 64 列"))
            quantities = {n: (quantities or {}).get(n, quantity) for n in names}
            if period_s is None:
                period_s = float(np.median(np.diff(t))) if t.size > 1 else 60.0
            site = Path(work) / "replay.toml"
            site.write_text(_site_text(quantities, period_s), encoding="utf-8")
            cfg = load_site(site)
            idx = np.arange(len(names), dtype=np.int64)
        outbox = Outbox(Path(work) / "outbox.sqlite", max_bytes=0)
        engine = AlertEngine(cfg, outbox, "minewatch/v1")
        detect = DetectStage(cfg, form="block")  # compile only the replay's kernel form
        acquired = np.where(np.isfinite(x), 0, 5).astype(np.uint8)
        # the same kernels as the live path in their block form: row i sees rows <= i only,
        # combined by the live path's own rule
        parts = detect.run_block(t, idx, x, acquired == 0)
        combined = combine(parts, x.shape)
        quality = merge_quality(acquired, combined.fault)
        _grade_rows(engine, t, idx, x, combined, quality, parts)
        score, grade, fault = combined.score, combined.grade, combined.fault
        events = outbox.alert_log(limit=10**9)
        outbox.close()
    for ev in events:
        ev.pop("delivered_at", None)
    return ReplayResult(t, list(names), x, score, grade, fault, quality, events, parts,
                        _notes(cfg, t, names, x))


def _notes(cfg, t: np.ndarray, names: list[str], x: np.ndarray) -> list:
    """What each detector can judge at each column's observed cadence (its median step)."""
    from gateway.detector_notes import point_notes

    periods = {}
    for k, name in enumerate(names):
        tk = t[np.isfinite(x[:, k])]
        if tk.size > 1:
            periods[name] = float(np.median(np.diff(tk)))
    return [n for n in point_notes(cfg, periods) if n.point in periods]


def replay(input_path: Path, out_path: Path, *, quantity: str = "generic",
           config: Path | None = None, events_path: Path | None = None,
           columns: list[str] | None = None, sep: str | None = None,
           tz: str = "Asia/Shanghai", sidecar: Path | None = None, long: bool = False,
           plot_path: Path | None = None, missing: list[str] | None = None) -> dict:
    """Replay `input_path` through the detect and grade stages; returns a summary (its
    `input` key: what reading the export did, `InputReport.as_dict`)."""
    zone = ZoneInfo(tz)
    t, names, x, report = read_export(input_path, columns, sep, zone, missing)
    quantities = None
    if sidecar is not None and config is None:
        quantities = read_sidecar(sidecar, names)
        # the scenario's own site config grades the columns with its thresholds and detector
        # sets (a generated storm that crosses red must say so); without it, the quantities'
        # defaults
        config = sidecar_site_config(sidecar, names)
    result = replay_arrays(t, names, x, config=config, quantities=quantities, quantity=quantity,
                           where=str(input_path))
    events = result.events
    if long:
        _write_long(out_path, t, names, x, result.parts, zone)
    else:
        _write_wide(out_path, t, names, x, result.score, result.grade, zone)
    if events_path is not None:
        with events_path.open("w", encoding="utf-8") as fh:
            for ev in events:
                fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    if plot_path is not None:
        from gateway.replay_plot import plot_replay

        plot_replay(plot_path, t, names, x, result.grade, events, zone)
    return {"rows": x.shape[0], "channels": x.shape[1], "events": len(events),
            "max_grade": int(result.grade.max()) if result.grade.size else 0,
            "input": report.as_dict() | {"warnings": report.warnings()},
            "notes": [n.text() for n in result.notes]}


def _write_wide(out_path: Path, t: np.ndarray, names: list[str], x: np.ndarray,
                score: np.ndarray, grade: np.ndarray, zone: ZoneInfo) -> None:
    """The OUT contract: `timestamp`, then per channel `<name>`, `<name>_score`, `<name>_grade`."""
    m, c = x.shape
    with out_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", *[f"{n}{s}" for n in names for s in ("", "_score", "_grade")]])
        for r in range(m):
            row = [datetime.fromtimestamp(t[r], zone).isoformat()]
            for k in range(c):
                v = x[r, k]
                row += ["" if math.isnan(v) else repr(float(v)), f"{score[r, k]:.4f}",
                        int(grade[r, k])]
            w.writerow(row)


def _separator(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " "}
    sep = named.get(text.lower(), text)
    if len(sep) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one character (or tab, comma, "
                                         "semicolon, space)")
    return sep


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The `minewatch replay` options (gateway/cli/replay.py builds the subparser and calls this)."""
    parser.add_argument("input", type=Path)
    parser.add_argument("--quantity", default="generic",
                        help="the columns' quantity when there is no --config (default: generic)")
    parser.add_argument("--config", type=Path, help="a site config whose points are the columns")
    parser.add_argument("--sidecar", type=Path,
                        help="each column's quantity from a `firmware-sim generate` sidecar "
                             "(<out>.meta.json) instead of --quantity")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--long", action="store_true",
                        help="one row per input row, channel and detector, with its evidence")
    parser.add_argument("--events", type=Path, help="write the events as JSON lines")
    parser.add_argument("--plot", type=Path, help="draw series, grade bands and events (PNG)")
    parser.add_argument("--columns", nargs="+", help="value columns (default: all after the first)")
    parser.add_argument("--sep", type=_separator,
                        help="field separator: ',', ';' or 'tab' (default: sniffed)")
    parser.add_argument("--missing", nargs="+", metavar="VALUE",
                        help="more missing-value markers, e.g. -9999 -99999 (numbers match "
                             "numerically); empty, NaN, null, -, --, N/A, #N/A ... always are")
    from gateway.cli.common import zone_arg

    parser.add_argument("--tz", default="Asia/Shanghai", type=zone_arg,
                        help="zone of naive timestamps")
