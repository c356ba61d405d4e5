"""`minewatch status`: the running daemon's health, read from its /status endpoint (with the
bearer token when the config names one), as a table or the document itself."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_DAEMON,
    EXIT_OK,
    command_parser,
    err,
    load_config,
    pad,
)
from gateway.i18n import tr

__all__ = ["add_commands", "cmd_status"]


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    lang = args.lang
    if cfg.gateway.listen is None:
        err(tr(lang, "listen_off", file=cfg.path))
        return EXIT_CONFIG
    import urllib.error
    import urllib.request

    from gateway.status_http import read_token, status_url

    url = status_url(cfg.gateway)
    from gateway.text_files import TextFileError

    try:
        token = read_token(cfg.gateway)
    except TextFileError as exc:
        err(tr(lang, "token_unreadable", file=cfg.gateway.status_token_file,
               error=exc.reason.in_lang(lang)))
        return EXIT_CONFIG
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            err(tr(lang, "status_refused", url=url, file=cfg.gateway.status_token_file))
            return EXIT_DAEMON
        err(tr(lang, "daemon_unreachable", url=url, error=exc))
        return EXIT_DAEMON
    except (urllib.error.URLError, OSError, ValueError) as exc:
        err(tr(lang, "daemon_unreachable", url=url, error=exc))
        return EXIT_DAEMON
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"{tr(lang, 'st_site')} {doc['site']}  {tr(lang, 'st_gateway')} {doc['gateway']}  "
          f"v{doc['version']}  {tr(lang, 'st_uptime')} {doc['uptime_s'] / 3600:.1f} h")
    print(f"{tr(lang, 'st_online')}: {doc['devices_online']}/{len(doc['devices'])}   "
          + tr(lang, "st_outbox", events=doc["outbox"]["events"],
               telemetry=doc["outbox"]["telemetry"]))
    if doc["outbox"].get("unconfirmed"):
        age = doc["outbox"].get("oldest_unconfirmed_s")
        print("  " + tr(lang, "st_unconfirmed", n=doc["outbox"]["unconfirmed"],
                        age="-" if age is None else f"{age:.0f} s"))
    for u in doc.get("uplinks", []):
        print("  " + tr(lang, "st_uplink", name=u["name"], broker=u["broker"],
                        state=tr(lang, "st_connected" if u["connected"] else "st_disconnected"),
                        events=u["events"], telemetry=u["telemetry"], in_flight=u["in_flight"]))
        if u.get("unconfirmed"):
            age = u.get("oldest_unconfirmed_s")
            print("    " + tr(lang, "st_unconfirmed", n=u["unconfirmed"],
                              age="-" if age is None else f"{age:.0f} s"))
    storage = doc.get("storage") or {}
    if storage.get("state", "ok") != "ok":
        print(tr(lang, "st_storage", path=storage["path"], state=storage["state"].upper(),
                 reason=storage.get("reason") or "-", held=storage.get("held_events", 0)))
    for d in doc["devices"]:
        rate = "-" if d["online_rate"] is None else f"{100 * d['online_rate']:.1f} %"
        state = pad(tr(lang, "st_on" if d["online"] else "st_off"), 8)
        errors = ", ".join(f"{k} {n}" for k, n in sorted(d.get("errors", {}).items()))
        print(f"  {d['device']:20s} {state} {tr(lang, 'st_rate')} {rate:>8s}  "
              f"{tr(lang, 'st_polls')} {d['polls']:<7d} {tr(lang, 'st_missed')} "
              f"{d['missed_deadlines']}" + (f"  {tr(lang, 'st_errors')}: {errors}" if errors
                                            else ""))
    for a in doc["alerts"]:
        what = a.get("level") or a.get("condition") or f"quality {a.get('quality')}"
        acked = f"  ({tr(lang, 'st_acked')})" if a.get("acknowledged") else ""
        print(f"  {a['kind']:6s} {a['point']:12s} {what}{acked}")
    for w in doc.get("maintenance", []):
        print("  " + tr(lang, "st_maintenance", subject=w.get("point") or w.get("device"),
                        until=w["until_iso"], by=w["by"], reason=w["reason"]))
    if not doc["alerts"]:
        print("  " + tr(lang, "st_no_alerts"))
    return EXIT_OK


def add_commands(sub) -> None:
    status = command_parser(sub, "status", "the running daemon's health, from its /status", """
  minewatch status --config site.toml
  minewatch status --config site.toml --json
""", cmd_status)
    status.add_argument("--config", required=True, type=Path)
