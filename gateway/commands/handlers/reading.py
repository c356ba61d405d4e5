"""`reading`: a person's manual reading of a point, sent by the platform (`point`, `value`,
`by`, optionally `at` in epoch ms and `note`).

The same intake as `minewatch reading add` (`gateway/manual/`): checked against the point's
range, graded by the point's own thresholds with quality 6 (manual), compared with the
automatic value (a difference beyond `manual_tolerance` opens a comparison fault), published,
stored and reported. A refused reading is a `bad_request` naming the argument at fault.
"""

from __future__ import annotations

import argparse
import getpass

from gateway.commands.request import Args, CommandError, Request

NAME = "reading"
SUMMARY = "a manual reading of a point: graded, compared with the automatic value, stored"
EXAMPLES = """
  minewatch cmd reading --config site.toml --point WL-01 --value 1021.35 --by "李工"
  minewatch cmd reading --config site.toml --point WL-01 --value 1021.35 --by "李工" \\
      --at-ms 1784527200000 --note "staff gauge at the spillway"
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--point", required=True, help="the point read")
    p.add_argument("--value", required=True, type=float, help="the value, in the point's unit")
    p.add_argument("--by", default=None, help="who read it (default: this user)")
    p.add_argument("--at-ms", type=int, default=None,
                   help="when it was read, UTC epoch ms (default: when the gateway takes it)")
    p.add_argument("--note", default=None)


def request(ns: argparse.Namespace) -> dict:
    out = {"point": ns.point, "value": ns.value, "by": ns.by or getpass.getuser()}
    if ns.at_ms is not None:
        out["at"] = ns.at_ms
    if ns.note:
        out["note"] = ns.note
    return out


async def run(gw, req: Request) -> dict:
    from gateway.manual.validate import ReadingError

    a = Args(req, {"point", "value", "by", "at", "note"})
    point = a.text("point", required=True, max_len=128)
    by = a.text("by", required=True, max_len=100)
    note = a.text("note", max_len=500)
    at = a.epoch_ms("at")
    if "value" not in a.args:
        raise CommandError("bad_request", "value is required", argument="value")
    try:
        return gw.add_reading(point, a.args["value"], at=at, by=by, note=note, source="mqtt")
    except ReadingError as exc:
        raise CommandError("bad_request", exc.en, argument=exc.key, message_zh=exc.zh) from None


def show(result: dict, lang: str) -> str:
    zh = lang == "zh"
    cmp = result.get("comparison")
    if cmp is None:
        tail = "未比对" if zh else "not compared"
    elif cmp.get("agrees"):
        tail = "与自动监测一致" if zh else "agrees with the automatic value"
    else:
        tail = "与自动监测不一致，已报比测故障" if zh else \
            "disagrees with the automatic value: comparison fault"
    return (f"人工读数 {result['point']} = {result['value']:g} {result['unit']}，"
            f"等级 {result['level']}，{tail}" if zh else
            f"manual reading {result['point']} = {result['value']:g} {result['unit']}, "
            f"level {result['level']}, {tail}")
