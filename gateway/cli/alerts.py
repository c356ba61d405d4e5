"""`minewatch alerts list|test`: the site's permanent alert log (and the audit log of threshold
and config changes, with who made them), and one test alert through the uplink's own broker
settings, reporting its PUBACK."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    command_parser,
    err,
    group_parser,
    load_config,
    number_arg,
)
from gateway.i18n import tr

__all__ = ["add_commands", "cmd_alerts_list", "cmd_alerts_test"]


def cmd_alerts_list(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    from gateway.outbox import Outbox

    if not cfg.outbox.path.exists():
        print(tr(args.lang, "no_alert_log", path=cfg.outbox.path), file=sys.stderr)
        return EXIT_OK
    ob = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
    rows = ob.alert_log(args.limit)
    audit = ob.audit_log(args.limit) if args.audit else []
    ob.close()
    if args.audit:
        if args.json:
            print(json.dumps(audit, ensure_ascii=False, indent=2))
            return EXIT_OK
        from datetime import datetime
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(cfg.site.timezone)
        for a in audit:
            when = datetime.fromtimestamp(a["at"], tz).strftime("%Y-%m-%d %H:%M:%S")
            by = f"  ({a['by']})" if a.get("by") else ""
            print(f"{when}  {a['kind']} {a['subject']}: {json.dumps(a['before'])} -> "
                  f"{json.dumps(a['after'])}{by}")
        return EXIT_OK
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    for ev in rows:
        delivered = tr(args.lang, "delivered_col" if ev.get("delivered_at") else "pending_col")
        print(f"{ev['seq']:6d}  {ev.get('observed_at_local', ev['observed_at_iso'])}  "
              f"{ev['kind']:6s} {ev['state']:10s} {ev['level']:6s} {ev.get('point', ''):10s} "
              f"{delivered:9s}  {ev['message']['zh' if args.lang == 'zh' else 'en']}")
    return EXIT_OK


def cmd_alerts_test(args: argparse.Namespace) -> int:
    """Publish one test alert with its own client id and no will: never the daemon's session."""
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    lang = args.lang
    if cfg.mqtt is None:
        err(tr(lang, "no_mqtt", file=cfg.path))
        return EXIT_CONFIG
    from gateway.alerts.encoder import commissioning_event, topic
    from gateway.uplink.client import publish_once

    targets = {t.name: t for t in cfg.mqtt_targets}
    if args.target is not None and args.target not in targets:
        err(tr(lang, "no_target", file=cfg.path, target=args.target,
               known=", ".join(targets)))
        return EXIT_CONFIG
    m = targets[args.target] if args.target is not None else cfg.mqtt
    event = commissioning_event(cfg.site.code, cfg.gateway.id, time.time())
    broker = f"{m.host}:{m.port}"
    try:
        # the uplink's own broker settings (TLS, credentials, protocol), never its session: its
        # own client id, a clean session and no will
        result = publish_once(m, f"{m.client_id}-test-{os.getpid()}",
                              topic(m.prefix, cfg.site.code, cfg.gateway.id, "alert"),
                              json.dumps(event, ensure_ascii=False).encode())
    except OSError as exc:
        err(tr(lang, "broker_unreachable", broker=broker, error=exc))
        return EXIT_FAILED
    except ValueError as exc:  # the password file changed since the config was checked
        err(exc.render(lang) if hasattr(exc, "render") else str(exc))
        return EXIT_CONFIG
    ok = result.get("reason_code", 0x80) < 0x80 and "puback" in result
    report = {"target": m.name, "broker": broker, "event_id": event["event_id"], **result,
              "ok": ok}
    print(json.dumps(report, ensure_ascii=False) if args.json else
          tr(lang, "alert_test", event_id=event["event_id"], broker=broker,
             connect=result.get("connect"), puback=result.get("puback", "none"),
             reason=result.get("reason_code", "-"),
             verdict=tr(lang, "delivered" if ok else "not_delivered")))
    return EXIT_OK if ok else EXIT_FAILED


def add_commands(sub) -> None:
    asub = group_parser(sub, "alerts", "the site's alert log; a test alert", [
        "minewatch alerts test --config site.toml", "minewatch alerts list --config site.toml"])
    lst = command_parser(asub, "list", "list alert and fault events, oldest first", """
  minewatch alerts list --config site.toml --limit 20
  minewatch alerts list --config site.toml --audit     (threshold changes)
""", cmd_alerts_list)
    lst.add_argument("--config", required=True, type=Path)
    lst.add_argument("--limit", type=number_arg(1, 1_000_000, integer=True), default=100)
    lst.add_argument("--audit", action="store_true", help="the audit log of threshold changes")
    atest = command_parser(asub, "test", "publish one test alert (test: true, own client id, "
                           "no will) and report the broker's PUBACK reason code", """
  minewatch alerts test --config site.toml
  minewatch alerts test --config site.toml --json
  minewatch alerts test --config site.toml --target province
""", cmd_alerts_test)
    atest.add_argument("--config", required=True, type=Path)
    atest.add_argument("--target", help="the [[uplink.mqtt]] target to test, by its name "
                       "(default: the first)")
