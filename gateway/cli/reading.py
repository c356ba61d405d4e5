"""`minewatch reading add`: a manual (patrol, supplementary or comparison) reading of a point.

The reading is checked against the site config (the point, its range, the time, who read it),
stored in the history store and handed to the running gateway, which grades it with the point's
thresholds, compares it with the automatic value, publishes it and raises what it must
(`gateway/manual/intake.py`). The command waits `--wait` seconds for that result and prints it;
when the gateway is not running the reading waits for its next start, and the command says so.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    command_parser,
    err,
    group_parser,
    load_config,
)

__all__ = ["add_commands", "cmd_reading_add"]

_T = {
    "stored": ("已记录人工读数 {point} = {value} {unit}（{by}，{at}），编号 {id}",
               "stored the manual reading {point} = {value} {unit} (by {by}, {at}), id {id}"),
    "waiting": ("网关未在 {wait:g} 秒内处理（未运行？）：读数已保存，网关下次运行时分级、比测并发布。"
                "按本站阈值预判等级：{level}",
                "the gateway did not take it within {wait:g} s (not running?): the reading is "
                "stored and will be graded, compared and published when it runs. Its grade by "
                "the site's thresholds: {level}"),
    "graded": ("分级：{level}{roman}", "grade: {level}{roman}"),
    "compared": ("自动监测 {auto} {unit}（差值 {diff:+.4g} {unit}，允许偏差 {tol}）：{verdict}",
                 "automatic {auto} {unit} (difference {diff:+.4g} {unit}, tolerance {tol}): "
                 "{verdict}"),
    "agree": ("一致", "agrees"), "disagree": ("不一致，已报比测故障", "disagrees: comparison fault"),
    "no_tol": ("未设置 manual_tolerance，不比对", "no manual_tolerance: not compared"),
    "no_auto": ("读数前后无自动监测值，未比对", "no automatic value near the reading: not compared"),
    "event": ("事件 seq {seq}：{kind} {state} {level}", "event seq {seq}: {kind} {state} {level}"),
    "rejected": ("网关拒收该读数：{reason}", "the gateway rejected the reading: {reason}"),
    "no_history": ("站点配置中 [history] 未启用：人工读数存放在历史库中",
                   "[history] is off in the site config: manual readings live in the history "
                   "store"),
    "bad_at": ("--at {at!r} 不是时间（ISO 8601，如 2026-07-21T09:30+08:00，或纪元秒）",
               "--at {at!r} is not a time (ISO 8601 such as 2026-07-21T09:30+08:00, or epoch s)"),
}
LEVEL_ZH = {"none": "无", "blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


def _time(text: str, tz) -> float:
    from datetime import datetime

    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)  # a time without a zone is the site's local time
    return dt.timestamp()


def cmd_reading_add(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    k = 0 if args.lang == "zh" else 1
    if cfg.history is None or not cfg.history.enabled:
        err(_T["no_history"][k])
        return EXIT_CONFIG
    from zoneinfo import ZoneInfo

    from gateway.history.readings import reading_state, store_reading
    from gateway.history.store import month_start
    from gateway.manual.validate import ReadingError, check_reading
    from gateway.state_dir import StorageError

    tz = ZoneInfo(cfg.site.timezone)
    now = time.time()
    try:
        at = now if args.at is None else _time(args.at, tz)
    except ValueError:
        raise UsageError(_T["bad_at"][k].format(at=args.at)) from None
    try:
        reading = check_reading(cfg, args.point, args.value, at, args.by, args.note, now, "cli",
                                oldest=month_start(now, tz, back=cfg.history.keep_months))
    except ReadingError as exc:
        raise UsageError(exc.text(args.lang)) from None
    try:
        store_reading(cfg.history.path, reading)
    except StorageError as exc:
        err(str(exc))
        return EXIT_FAILED
    p = next(q for q in cfg.points if q.name == reading.point)
    from datetime import datetime

    when = datetime.fromtimestamp(reading.at, tz).strftime("%Y-%m-%d %H:%M:%S")
    if not args.json:
        print(_T["stored"][k].format(point=p.name, value=f"{reading.value:g}", unit=p.unit,
                                     by=reading.by, at=when, id=reading.reading_id))
    deadline = time.monotonic() + args.wait
    state = None
    while time.monotonic() < deadline:
        state = reading_state(cfg.history.path, reading.reading_id)
        if state is not None and state[0] != "pending":
            break
        time.sleep(0.2)
    if state is None or state[0] == "pending":
        from gateway.manual.grade import grade_reading

        level = ("none", "blue", "yellow", "orange", "red")[
            grade_reading(cfg, p.index, reading.value, reading.at).level]
        if args.json:
            print(json.dumps({"reading_id": reading.reading_id, "state": "pending",
                              "level": level}, ensure_ascii=False))
        else:
            print(_T["waiting"][k].format(wait=args.wait,
                                          level=LEVEL_ZH[level] if k == 0 else level))
        return EXIT_OK
    status, result = state
    if args.json:
        print(json.dumps({"state": status, **(result or {})}, ensure_ascii=False))
        return EXIT_OK if status == "done" else EXIT_FAILED
    if status != "done":
        reason = ((result or {}).get("error") or {}).get("zh" if k == 0 else "en", "?")
        err(_T["rejected"][k].format(reason=reason))
        return EXIT_FAILED
    _print_result(result, p.unit, k)
    return EXIT_OK


def _print_result(result: dict, unit: str, k: int) -> None:
    level = result["level"]
    roman = f" ({result['grade_roman']})" if result["grade_roman"] else ""
    print(_T["graded"][k].format(level=LEVEL_ZH[level] if k == 0 else level, roman=roman))
    c = result["comparison"]
    if c is None:
        print(_T["no_auto"][k])
    elif c["agrees"] is None:
        print(_T["no_tol"][k])
    else:
        print(_T["compared"][k].format(auto=f"{c['automatic']:.4f}".rstrip("0").rstrip("."),
                                       unit=unit, diff=c["difference"],
                                       tol=f"{c['tolerance']:g} {unit}",
                                       verdict=_T["agree" if c["agrees"] else "disagree"][k]))
    for e in result["events"]:
        print(_T["event"][k].format(**e))


def add_commands(sub) -> None:
    rsub = group_parser(sub, "reading", "manual (patrol and comparison) readings", [
        "minewatch reading add --config site.toml --point JRX-01 --value 12.41 --by 张工"])
    add = command_parser(rsub, "add", "a manual reading: checked against the point's range, "
                         "graded by its thresholds, compared with the automatic value, "
                         "published and kept for the monthly report", """
  minewatch reading add --config site.toml --point JRX-01 --value 12.41 --by 张工
  minewatch reading add --config site.toml --point WL-01 --value 1253.42 \\
      --at 2026-07-21T09:30 --by "Li Wei" --note "staff gauge at the decant tower"
""", cmd_reading_add)
    add.add_argument("--config", required=True, type=Path)
    add.add_argument("--point", required=True)
    add.add_argument("--value", required=True, help="in the point's unit")
    add.add_argument("--at", help="when it was read: ISO 8601 (no zone = the site's local time) "
                     "or epoch s; default now")
    add.add_argument("--by", required=True, help="who read it")
    add.add_argument("--note", help="where and how (a staff gauge, a dip meter ...)")
    add.add_argument("--wait", type=float, default=10.0,
                     help="seconds to wait for the running gateway's result (default 10)")
