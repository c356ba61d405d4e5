"""`minewatch cmd NAME`: the platform's side of a command, for commissioning and tests. One
sub-command per command the gateway takes (`gateway/commands/handlers/`): it builds the request
from the options, signs it with the config's command key (or `--key`, the platform's Ed25519
private key), sends it through the uplink's broker settings, waits for the result and prints it
(`--json`: the whole result document)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_DAEMON,
    EXIT_FAILED,
    EXIT_OK,
    command_parser,
    err,
    group_parser,
    load_config,
)
from gateway.i18n import tr

__all__ = ["add_commands", "cmd_send"]


def cmd_send(args: argparse.Namespace) -> int:
    from gateway.commands.keys import KeyProblem, read_key
    from gateway.commands.registry import commands

    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    lang = args.lang
    if cfg.mqtt is None:
        err(tr(lang, "no_mqtt", file=cfg.path))
        return EXIT_CONFIG
    key_file = args.key or cfg.commands.key_file
    key = None
    if key_file is not None:
        try:
            key = read_key(key_file)
        except KeyProblem as exc:
            err(str(exc))
            return EXIT_CONFIG
        if key.kind == "ed25519" and not key.private:
            err(tr(lang, "cmd_needs_private", file=key_file))
            return EXIT_CONFIG
    command = commands()[args.command]
    try:
        request = command.request(args)
    except (OSError, ValueError) as exc:
        err(str(exc))
        return EXIT_CONFIG
    from gateway.commands.remote import send

    broker = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
    try:
        got = send(cfg, args.command, request, key, args.timeout)
    except OSError as exc:
        err(tr(lang, "broker_unreachable", broker=broker, error=exc))
        return EXIT_FAILED
    answer = got.get("answer")
    if answer is None:
        err(tr(lang, "cmd_no_answer", command=args.command, id=got["request"]["id"],
               timeout=args.timeout, broker=broker, connect=got.get("connect", "-")))
        return EXIT_DAEMON
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    elif answer["ok"]:
        print(command.show(answer["result"], lang))
    else:
        e = answer["error"]
        print(tr(lang, "cmd_refused", command=args.command, code=e["code"], message=e["message"]))
        for p in e.get("problems", []):
            print("  " + p["text"])
    return EXIT_OK if answer["ok"] else EXIT_FAILED


def add_commands(sub) -> None:
    from gateway.commands.registry import commands

    every = commands()
    csub = group_parser(sub, "cmd", "send the gateway a command as the platform does "
                        "(measure, ack, config, maintenance, time, status)",
                        [e.strip() for c in every.values()
                         for e in c.examples.strip().splitlines()[:1]])
    for name, c in every.items():
        p = command_parser(csub, name, c.summary, c.examples, cmd_send)
        p.add_argument("--config", required=True, type=Path)
        p.add_argument("--timeout", type=float, default=30.0,
                       help="seconds to wait for the result (default 30)")
        p.add_argument("--key", type=Path, default=None,
                       help="sign with this key instead of [commands] key_file (the platform's "
                            "Ed25519 private key)")
        c.add_arguments(p)
        p.set_defaults(command=name)
