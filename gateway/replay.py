"""`minewatch replay`: what the gateway would have said about an exported series.

Field engineers run it on exports from old data loggers. It runs the live path's own stages,
causally, row by row: the detect stage (the same kernels and detector sets) and the alert engine
(the same events, ids and gap-free seq, committed to a throw-away outbox), so a replay of a
scenario gives the events the live gateway gave. Input: a timestamp column (ISO 8601 or epoch
seconds; naive times are in `--tz`) and value columns; output: one row per input row with each
channel's value, score (the largest over its detectors) and grade.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["replay", "read_series", "ReplayError"]


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


def _site_text(names: list[str], quantity: str) -> str:
    """A site config of one never-polled device whose channels carry the replayed columns."""
    from gateway.profiles import default_profile_dirs

    lines = ['[site]\ncode = "REPLAY"\nkind = "tailings_pond"\n',
             '[gateway]\nid = "replay"\nlisten = "off"\n',
             '[[buses]]\nname = "none"\nhost = "127.0.0.1"\nport = 1\n',
             '[[devices]]\nname = "replay"\nbus = "none"\nunit = 1\n'
             'profile = "analog_input_64ch"\nperiod = "1min"\n']
    for k, name in enumerate(names):
        lines.append(f'[[points]]\nname = "{name}"\nquantity = "{quantity}"\n'
                     f'device = "replay"\nchannel = "ai{k + 1}"\n')
    return f'profiles_dir = "{default_profile_dirs()[0]}"\n' + "\n".join(lines)


def replay(input_path: Path, out_path: Path, *, quantity: str = "generic",
           config: Path | None = None, events_path: Path | None = None,
           columns: list[str] | None = None, sep: str | None = None,
           tz: str = "Asia/Shanghai") -> dict:
    """Replay `input_path` through the detect and grade stages; returns a summary."""
    from gateway.alerts.engine import AlertEngine
    from gateway.batch import Batch
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
            site = Path(work) / "replay.toml"
            site.write_text(_site_text(names, quantity), encoding="utf-8")
            cfg = load_site(site)
            idx = np.arange(len(names), dtype=np.int64)
        outbox = Outbox(Path(work) / "outbox.sqlite", max_bytes=0)
        engine = AlertEngine(cfg, outbox, "minewatch/v1")
        detect = DetectStage(cfg)
        m, c = x.shape
        score = np.zeros((m, c), np.float32)
        grade = np.zeros((m, c), np.int8)
        for r in range(m):
            values = x[r]
            quality = np.where(np.isfinite(values), 0, 5).astype(np.uint8)
            batch = Batch("replay", float(t[r]), idx, values, quality)
            verdict = detect.process(batch)
            q = np.where(quality == 0, verdict.fault, quality).astype(np.uint8)
            engine.process(batch.t, idx, values, q, verdict)
            score[r], grade[r] = verdict.score, verdict.grade
        events = outbox.alert_log(limit=10**9)
        outbox.close()
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
    if events_path is not None:
        with events_path.open("w", encoding="utf-8") as fh:
            for ev in events:
                ev.pop("delivered_at", None)
                fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    return {"rows": m, "channels": c, "events": len(events),
            "max_grade": int(grade.max()) if grade.size else 0}
