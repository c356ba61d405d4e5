"""`minewatch replay`: an exported series through the detectors and the alert engine, as the
live gateway would have graded it (the work is gateway/replay.py's)."""

from __future__ import annotations

import argparse
import json

from gateway.cli.common import EXIT_CONFIG, EXIT_OK, command_parser, err
from gateway.i18n import tr

__all__ = ["add_commands", "cmd_replay"]


def cmd_replay(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from gateway.numba_cache import configure, import_numba
    from gateway.replay import ReplayError, replay

    configure()  # the install's compiled kernels: the first replay does not compile
    import_numba()
    try:
        summary = replay(args.input, args.out, quantity=args.quantity, config=args.config,
                         events_path=args.events, columns=args.columns, sep=args.sep, tz=args.tz,
                         sidecar=args.sidecar, long=args.long, plot_path=args.plot,
                         missing=args.missing)
    except (ReplayError, ConfigError) as exc:
        err(exc.render(args.lang))
        return EXIT_CONFIG
    except OSError as exc:  # the output cannot be written
        err(f"{exc.filename or ''}: {exc.strerror or exc}")
        return EXIT_CONFIG
    for line in summary["input"]["warnings"]:  # what reading the export skipped or assumed
        err(line)
    for line in summary["notes"]:  # what the detectors cannot judge, or judge slowly, here
        err(f"note: {line}")
    print(json.dumps(summary) if args.json else
          tr(args.lang, "replay_done", rows=summary["rows"], channels=summary["channels"],
             events=summary["events"], grade=summary["max_grade"], out=args.out))
    return EXIT_OK


def add_commands(sub) -> None:
    rp = command_parser(sub, "replay", "run an exported series through the detectors and the "
                        "alert engine, as the live gateway would have", """
  minewatch replay logger.csv --quantity water_level --out graded.csv
  minewatch replay logger.csv --config site.toml --out graded.csv --events events.jsonl
  firmware-sim generate --scenario rainstorm --period 10min --out storm.csv
  minewatch replay storm.csv --sidecar storm.csv.meta.json --out graded.csv --plot storm.png
""", cmd_replay)
    from gateway.replay import add_replay_arguments

    add_replay_arguments(rp)
