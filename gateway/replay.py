"""`minewatch replay`: what the gateway would have said about an exported series.

Field engineers run it on exports from old data loggers. It runs the live path's own stages,
causally, row by row: the detect stage (the same kernels and detector sets) and the alert engine
(the same events, ids and gap-free seq, committed to a throw-away outbox), so a replay of a
scenario gives the events the live gateway gave. Input: a timestamp column (ISO 8601 or epoch
seconds; naive times are in `--tz`) and value columns; output: one row per input row with each
channel's value, score (the largest over its detectors) and grade, or with `--long` one row per
input row, channel and detector with that detector's evidence; `--plot` draws the series with
grade bands and events. `--sidecar` takes each column's quantity from a `firmware-sim generate`
sidecar (`{"columns": {"<name>": {"quantity": ..., "unit": ...}}}`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["replay", "read_series", "read_sidecar", "add_replay_arguments", "ReplayError"]


class ReplayError(ValueError):
    """The input cannot be replayed; the message names the file, the row or the column."""


def _timestamp(text: str, tz: ZoneInfo, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"{where}: {text!r} is neither epoch seconds nor ISO 8601") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).timestamp()


def read_series(path: Path, columns: list[str] | None, sep: str | None, tz: ZoneInfo
                ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(t float64[m], column names, x float64[m, c]) from a CSV with a timestamp column first."""
    text = path.read_text(encoding="utf-8-sig")
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
        except csv.Error:
            sep = ","
    rows = list(csv.reader(text.splitlines(), delimiter=sep))
    if len(rows) < 2:
        raise ReplayError(f"{path}: no data rows")
    header = [h.strip() for h in rows[0]]
    names = columns or header[1:]
    missing = [c for c in names if c not in header]
    if missing:
        raise ReplayError(f"{path}: no column(s) {missing}; the header has {header}")
    cols = [header.index(c) for c in names]
    t = np.empty(len(rows) - 1)
    x = np.full((len(rows) - 1, len(cols)), np.nan)
    for r, row in enumerate(rows[1:]):
        t[r] = _timestamp(row[0], tz, f"{path}: row {r + 2}")
        for k, c in enumerate(cols):
            cell = row[c].strip() if c < len(row) else ""
            if cell and cell.lower() not in ("nan", "null", "none", "-"):
                try:
                    x[r, k] = float(cell)
                except ValueError:
                    raise ReplayError(f"{path}: row {r + 2}, column {names[k]!r}: "
                                      f"{cell!r} is not a number") from None
    if np.any(np.diff(t) < 0):
        raise ReplayError(f"{path}: timestamps go backwards (row "
                          f"{int(np.flatnonzero(np.diff(t) < 0)[0]) + 3})")
    return t, names, x


def read_sidecar(path: Path, names: list[str]) -> dict[str, str]:
    """Column → quantity from a `firmware-sim generate` sidecar; every column must be in it."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        columns = meta["columns"]
        quantities = {name: str(columns[name]["quantity"]) for name in names if name in columns}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReplayError(f"{path}: not a sidecar with columns.<name>.quantity ({exc})") from None
    missing = [n for n in names if n not in quantities]
    if missing:
        raise ReplayError(f"{path}: no quantity for column(s) {missing}")
    return quantities


def _site_text(quantities: dict[str, str]) -> str:
    """A site config of one never-polled device whose channels carry the replayed columns."""
    from gateway.profiles import default_profile_dirs

    lines = ['[site]\ncode = "REPLAY"\nkind = "tailings_pond"\n',
             '[gateway]\nid = "replay"\nlisten = "off"\n',
             '[[buses]]\nname = "none"\nhost = "127.0.0.1"\nport = 1\n',
             '[[devices]]\nname = "replay"\nbus = "none"\nunit = 1\n'
             'profile = "analog_input_64ch"\nperiod = "1min"\n']
    for k, (name, quantity) in enumerate(quantities.items()):
        lines.append(f'[[points]]\nname = "{name}"\nquantity = "{quantity}"\n'
                     f'device = "replay"\nchannel = "ai{k + 1}"\n')
    return f'profiles_dir = "{default_profile_dirs()[0]}"\n' + "\n".join(lines)


_LONG_HEADER = ["timestamp", "channel", "value", "detector", "score", "grade", "fault",
                "evidence"]


def _combine(parts: list, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Per row and channel, as `DetectStage.process` combines its detectors: the largest score,
    the highest grade (the first detector to reach it sets it), the most severe fault."""
    m, c = shape
    score = np.zeros((m, c), np.float32)
    grade = np.zeros((m, c), np.int8)
    fault = np.zeros((m, c), np.uint8)
    driver = np.full((m, c), -1, np.int64)
    pos = np.zeros((m, c), np.int64)
    for d, (_, _, cols, out) in enumerate(parts):
        score[:, cols] = np.maximum(score[:, cols], out.score)
        fault[:, cols] = np.maximum(fault[:, cols], out.fault)
        better = (out.grade > grade[:, cols]) | (driver[:, cols] < 0)
        grade[:, cols] = np.where(better, out.grade, grade[:, cols])
        driver[:, cols] = np.where(better, d, driver[:, cols])
        pos[:, cols] = np.where(better, np.arange(cols.size), pos[:, cols])
    return score, grade, fault, driver, pos


class _RowVerdict:
    """One row of the block outputs in the shape the alert engine reads (`PointVerdict`)."""

    __slots__ = ("grade", "score", "detector", "_row", "_driver", "_pos", "_parts")

    def __init__(self, r: int, grade, score, driver, pos, parts):
        self.grade, self.score = grade[r], score[r]
        self._row, self._driver, self._pos, self._parts = r, driver[r], pos[r], parts
        self.detector = [parts[d][0] if d >= 0 else "none" for d in self._driver]

    def evidence_of(self, j: int) -> dict[str, float]:
        d = self._driver[j]
        if d < 0:
            return {}
        _, names, _, out = self._parts[d]
        row = out.evidence[self._row, self._pos[j]]
        return {name: float(v) for name, v in zip(names, row, strict=True)}


def _grade_rows(engine, t, idx, x, quality, score, grade, driver, pos, parts) -> None:
    """Feed the alert engine row by row, skipping the rows on which it provably does nothing:
    while it is quiet (its levels equal the grades, nothing pending, no open fault) a row with
    the previous row's grades and good quality makes no event and changes no state."""
    m = t.shape[0]
    if m == 0:
        return
    moved = np.ones(m, np.bool_)
    moved[1:] = (grade[1:] != grade[:-1]).any(axis=1)
    moved |= (quality != 0).any(axis=1)
    wake = np.flatnonzero(moved)
    r = 0
    while r < m:
        verdict = _RowVerdict(r, grade, score, driver, pos, parts)
        engine.process(float(t[r]), idx, x[r], quality[r], verdict)
        quiet = (np.array_equal(engine.level[idx], grade[r])
                 and not np.isfinite(engine.pending_since[idx]).any()
                 and not engine.fault[idx].any())
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
                for detector, ev_names, cols, out in parts:
                    hit = np.flatnonzero(cols == k)
                    if not hit.size:
                        continue
                    p = int(hit[0])
                    evidence = {e: (None if math.isnan(float(a)) else round(float(a), 6))
                                for e, a in zip(ev_names, out.evidence[r, p], strict=True)}
                    w.writerow([stamp, name, value, detector, f"{float(out.score[r, p]):.4f}",
                                int(out.grade[r, p]), int(out.fault[r, p]),
                                json.dumps(evidence, separators=(",", ":"))])


def replay(input_path: Path, out_path: Path, *, quantity: str = "generic",
           config: Path | None = None, events_path: Path | None = None,
           columns: list[str] | None = None, sep: str | None = None,
           tz: str = "Asia/Shanghai", sidecar: Path | None = None, long: bool = False,
           plot_path: Path | None = None) -> dict:
    """Replay `input_path` through the detect and grade stages; returns a summary."""
    from gateway.alerts.engine import AlertEngine
    from gateway.config import load_site
    from gateway.detect import DetectStage
    from gateway.outbox import Outbox

    zone = ZoneInfo(tz)
    t, names, x = read_series(input_path, columns, sep, zone)
    with tempfile.TemporaryDirectory(prefix="minewatch-replay-") as work:
        if config is not None:
            cfg = load_site(config)
            known = {p.name: p.index for p in cfg.points}
            missing = [n for n in names if n not in known]
            if missing:
                raise ReplayError(f"{input_path}: column(s) {missing} are not points of "
                                  f"{config}; its points: {', '.join(known)}")
            idx = np.array([known[n] for n in names], dtype=np.int64)
        else:
            if len(names) > 64:
                raise ReplayError(f"{input_path}: at most 64 columns without --config")
            quantities = read_sidecar(sidecar, names) if sidecar is not None else \
                dict.fromkeys(names, quantity)
            site = Path(work) / "replay.toml"
            site.write_text(_site_text(quantities), encoding="utf-8")
            cfg = load_site(site)
            idx = np.arange(len(names), dtype=np.int64)
        outbox = Outbox(Path(work) / "outbox.sqlite", max_bytes=0)
        engine = AlertEngine(cfg, outbox, "minewatch/v1")
        detect = DetectStage(cfg)
        quality = np.where(np.isfinite(x), 0, 5).astype(np.uint8)
        # the same kernels as the live path in their block form: row i sees rows <= i only
        parts = detect.run_block(t, idx, x, quality == 0)
        score, grade, fault, driver, pos = _combine(parts, x.shape)
        quality = np.where(quality == 0, fault, quality).astype(np.uint8)
        _grade_rows(engine, t, idx, x, quality, score, grade, driver, pos, parts)
        events = outbox.alert_log(limit=10**9)
        outbox.close()
    if long:
        _write_long(out_path, t, names, x, parts, zone)
    else:
        _write_wide(out_path, t, names, x, score, grade, zone)
    for ev in events:
        ev.pop("delivered_at", None)
    if events_path is not None:
        with events_path.open("w", encoding="utf-8") as fh:
            for ev in events:
                fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    if plot_path is not None:
        plot_replay(plot_path, t, names, x, grade, events, zone)
    return {"rows": x.shape[0], "channels": x.shape[1], "events": len(events),
            "max_grade": int(grade.max()) if grade.size else 0}


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


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The `minewatch replay` options (gateway/cli.py builds the subparser and calls this)."""
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
    parser.add_argument("--sep", help="field separator (default: sniffed; loggers often use ';')")
    parser.add_argument("--tz", default="Asia/Shanghai", help="zone of naive timestamps")


_GRADE_COLOURS = {1: "#4a90d9", 2: "#f2c94c", 3: "#f2994a", 4: "#eb5757"}  # GB blue … red


def plot_replay(path: Path, t: np.ndarray, names: list[str], x: np.ndarray, grade: np.ndarray,
                events: list[dict], zone: ZoneInfo) -> None:
    """One panel per channel: the series, its grade as coloured bands, the events as lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # a gateway or CI box has no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReplayError("--plot needs matplotlib (pip install 'minewatch[plot]')") from None
    when = [datetime.fromtimestamp(v, zone) for v in t]
    c = len(names)
    fig, axes = plt.subplots(c, 1, figsize=(11, 2.2 * c + 0.6), sharex=True, squeeze=False)
    for k, (ax, name) in enumerate(zip(axes[:, 0], names, strict=True)):
        ax.plot(when, x[:, k], lw=0.8, color="black")
        g = grade[:, k]
        edges = np.flatnonzero(np.diff(g)) + 1  # runs of one grade become one band each
        for a, b in zip(np.r_[0, edges], np.r_[edges, len(g)], strict=True):
            if g[a] > 0:
                ax.axvspan(when[a], when[min(b, len(g) - 1)], color=_GRADE_COLOURS[int(g[a])],
                           alpha=0.3, lw=0)
        for ev in events:
            if ev.get("point") == name:
                at = datetime.fromtimestamp(ev["observed_at"] / 1000.0, zone)
                ax.axvline(at, color=_GRADE_COLOURS.get(_LEVEL.get(ev["level"], 0), "grey"),
                           lw=1.0, ls="--" if ev["state"] == "cleared" else "-")
        ax.set_ylabel(name)
    axes[0, 0].set_title(f"replay: grade bands (blue … red) and events ({len(events)})")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


_LEVEL = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
