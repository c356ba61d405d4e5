"""`maintenance`: points or devices a field engineer is working on, for a while.

`{"points" | "devices": [...], "until" (epoch ms, the gateway's clock) or "duration" (seconds
or "2h"), "by", "reason"}`: those points are still polled and reported (telemetry flags them),
raise no safety alert and have their faults recorded, not escalated, until the window ends by
itself (`gateway/maintenance.py`). A `duration` of 0 (or an `until` already past) ends their
window now. A window may last at most `[commands] maintenance_max` (7 days by default).
"""

from __future__ import annotations

import argparse
import getpass

from gateway.commands.request import Args, CommandError, Request

NAME = "maintenance"
SUMMARY = "put points or devices in maintenance for a while (no safety alerts), or end it"
EXAMPLES = """
  minewatch cmd maintenance --config site.toml --points JRX-01 --for 2h --reason "cable repair"
  minewatch cmd maintenance --config site.toml --devices vw_logger_a --for 1d --reason "recalibration"
  minewatch cmd maintenance --config site.toml --points JRX-01 --end
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--points", help="comma-separated point names")
    which.add_argument("--devices", help="comma-separated device names")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--for", dest="duration", help='how long: "2h", "30min", "1d"')
    when.add_argument("--until", help="until this time (epoch ms of the gateway's clock)")
    when.add_argument("--end", action="store_true", help="end their maintenance now")
    p.add_argument("--by", default=None, help="who (default: this user)")
    p.add_argument("--reason", default=None)


def request(ns: argparse.Namespace) -> dict:
    key = "points" if ns.points else "devices"
    out: dict = {key: [x.strip() for x in (ns.points or ns.devices).split(",") if x.strip()],
                 "by": ns.by or getpass.getuser()}
    if ns.end:
        out["duration"] = 0
    elif ns.until:
        out["until"] = int(ns.until)
    else:
        out["duration"] = ns.duration
    if ns.reason:
        out["reason"] = ns.reason
    return out


async def run(gw, req: Request) -> dict:
    a = Args(req, {"points", "devices", "until", "duration", "by", "reason"})
    points, devices = a.names("points"), a.names("devices")
    if bool(points) == bool(devices):
        raise CommandError("bad_request", "give points or devices (one of them)")
    until, duration = a.epoch_ms("until"), a.seconds("duration")
    if (until is None) == (duration is None):
        raise CommandError("bad_request", "give until or duration (one of them)")
    by = a.text("by", required=True, max_len=100)
    reason = a.text("reason", max_len=500)
    cfg, now = gw.cfg, gw.clock.now()
    kind, names = ("point", points) if points else ("device", devices)
    known = {p.name for p in cfg.points} if points else {d.name for d in cfg.devices}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise CommandError("not_found", f"no {kind} {unknown[0]!r} in the running config",
                           unknown=unknown)
    subjects = [f"{kind}:{n}" for n in names or []]
    end = now + duration if duration is not None else until
    assert end is not None and by is not None
    if end <= now:
        ended = gw.maintenance.end(subjects, now, f"ended by {by}")
        if ended:
            gw.engine.maintenance_ended()
        return {"ended": [w.as_dict() for w in ended], "windows": gw.maintenance.active(now)}
    if end - now > cfg.commands.maintenance_max:
        raise CommandError("bad_request", f"a window of {(end - now) / 3600:.1f} h is longer "
                           f"than maintenance_max ({cfg.commands.maintenance_max / 3600:g} h)")
    if not reason:
        raise CommandError("bad_request", "reason is required: say what is being worked on",
                           argument="reason")
    started = gw.maintenance.start(subjects, now, end, by, reason, req.id)
    return {"started": [w.as_dict() for w in started], "windows": gw.maintenance.active(now)}


def show(result: dict, lang: str) -> str:
    zh = lang == "zh"
    lines = []
    for w in result.get("started", []):
        lines.append(f"{'维护' if zh else 'maintenance'}: {w.get('point') or w.get('device')} "
                     f"{'至' if zh else 'until'} {w['until_iso']} ({w['by']}: {w['reason']})")
    for w in result.get("ended", []):
        lines.append(f"{'结束维护' if zh else 'ended'}: {w.get('point') or w.get('device')}")
    return "\n".join(lines) or ("无变化" if zh else "nothing changed")
