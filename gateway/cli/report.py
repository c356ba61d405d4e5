"""`minewatch report monthly`: a month of the site as an HTML page for people (Chinese by default,
`--lang en`) or, with `--json`, the same figures as the document the daemon publishes after each
month (`config/schema/report.schema.json`). Reads the history store and the alert log beside a
running gateway; never writes them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    UsageError,
    command_parser,
    err,
    group_parser,
    load_config,
)

__all__ = ["add_commands", "cmd_report_monthly"]

_WROTE = ("已生成 {out}：{month}，{points} 个测点，安全预警 {episodes} 次，故障 {faults:.1f} 小时，"
          "人工读数 {manual} 次",
          "wrote {out}: {month}, {points} point(s), {episodes} safety episode(s), "
          "{faults:.1f} fault hour(s), {manual} manual reading(s)")
_NO_STORE = ("{path} 不存在：网关尚未运行过，或 [history] 未启用；报告中本月无数据",
             "{path} does not exist: the gateway has not run yet, or [history] is off; the "
             "report shows no data for the month")


def cmd_report_monthly(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.report.figures import monthly_figures
    from gateway.report.period import parse_month
    from gateway.report.source import ReportSource

    try:
        month = parse_month(args.month, ZoneInfo(cfg.site.timezone))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.max_plots < 0:
        raise UsageError(f"--max-plots must be 0 or more, got {args.max_plots}")
    k = 0 if args.lang == "zh" else 1
    history = cfg.history.path if cfg.history else cfg.gateway.state_dir / "history.sqlite"
    if not history.exists():
        err(_NO_STORE[k].format(path=history))
    source = ReportSource(history, cfg.outbox.path)
    try:
        doc = monthly_figures(cfg, month, source)
        if args.json:
            text = json.dumps(doc, ensure_ascii=False, indent=2)
        else:
            from gateway.report.html import render_html

            text = render_html(doc, source, args.lang, args.max_plots)
    finally:
        source.close()
    if args.out is None:
        sys.stdout.write(text + "\n")
        return EXIT_OK
    try:
        args.out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    s = doc["summary"]
    print(_WROTE[k].format(out=args.out, month=doc["month"], points=s["points"],
                           episodes=s["safety_episodes"], faults=s["fault_hours"],
                           manual=s["manual_readings"]), file=sys.stderr)
    return EXIT_OK


def add_commands(sub) -> None:
    rsub = group_parser(sub, "report", "the site's monthly report from the local history", [
        "minewatch report monthly --config site.toml --month 2026-07 --out report.html"])
    monthly = command_parser(rsub, "monthly", "a month in figures and plots: per point range, "
                             "trend and exceedances; alerts by grade with acknowledgement and "
                             "clearing times; fault hours; online rate; completeness; manual "
                             "readings", """
  minewatch report monthly --config site.toml --month 2026-07 --out report.html
  minewatch report monthly --config site.toml --month 2026-07 --lang en --out report-en.html
  minewatch report monthly --config site.toml --month 2026-07 --json --out 2026-07.json
""", cmd_report_monthly)
    # the report is for the city's analyst: Chinese unless asked otherwise, whatever the locale
    monthly.set_defaults(lang="zh")
    monthly.add_argument("--config", required=True, type=Path)
    monthly.add_argument("--month", required=True, help="YYYY-MM, the site's local month")
    monthly.add_argument("--out", type=Path, help="file to write (default: standard output)")
    monthly.add_argument("--max-plots", type=int, default=60,
                         help="plot at most this many points (those with alerts first)")
