"""`ack`: a person acknowledged an alert (`alert_id`, `by`, `note`).

The gateway publishes an `acknowledged` event of the alert (same `alert_id`, next `seq`, `ack`
with who, when and the note) and keeps it in the alert log; reminders of that alert stop
(`gateway/alerts/acknowledge.py`). An alert already acknowledged at its present level is not
acknowledged twice: the answer says who did it first.
"""

from __future__ import annotations

import argparse
import getpass

from gateway.alerts.acknowledge import AckError
from gateway.commands.request import Args, CommandError, Request

NAME = "ack"
SUMMARY = "acknowledge an alert: who saw it, with a note"
EXAMPLES = """
  minewatch cmd ack --config site.toml --alert-id 3f6c...  --by "张工" --note "on my way"
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alert-id", required=True, help="the alert's alert_id (one episode)")
    p.add_argument("--by", default=None, help="who acknowledges (default: this user)")
    p.add_argument("--note", default=None)


def request(ns: argparse.Namespace) -> dict:
    out = {"alert_id": ns.alert_id, "by": ns.by or getpass.getuser()}
    if ns.note:
        out["note"] = ns.note
    return out


async def run(gw, req: Request) -> dict:
    a = Args(req, {"alert_id", "by", "note"})
    alert_id = a.text("alert_id", required=True, max_len=64)
    by = a.text("by", required=True, max_len=100)
    note = a.text("note", max_len=500) or ""
    assert alert_id is not None and by is not None
    try:
        out = gw.acks.acknowledge(alert_id, by, note, gw.clock.now(), req.id)
    except AckError as exc:
        raise CommandError(exc.code, str(exc)) from None
    if out["acknowledged"]:
        gw.publisher.notify()
    return out


def show(result: dict, lang: str) -> str:
    zh = lang == "zh"
    if not result["acknowledged"]:
        first = result["already"]
        return (f"预警 {result['alert_id']} 已由 {first['by']} 于 {first['at_iso']} 确认" if zh
                else f"alert {result['alert_id']} was acknowledged by {first['by']} at "
                f"{first['at_iso']}")
    return (f"已确认 {result['point']} 的{result['level']}预警，事件 seq={result['seq']}" if zh
            else f"acknowledged the {result['level']} alert of {result['point']}: event "
            f"seq={result['seq']}")
