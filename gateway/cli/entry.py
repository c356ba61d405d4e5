"""The `minewatch` parser, assembled from one module per command group, and `main`: run the
chosen command and turn the failures every command shares into their exit codes."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from gateway.cli import alerts, common, config, device, reading, replay, report, run, status
from gateway.cli.common import EXIT_BUSY, EXIT_CONFIG, EXIT_OK, UsageError, err
from gateway.i18n import tr

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    import gateway.cli

    parser = argparse.ArgumentParser(prog="minewatch", description=gateway.cli.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    # the order of the help's command list
    run.add_run(sub)
    config.add_commands(sub)
    alerts.add_commands(sub)
    device.add_commands(sub)
    replay.add_commands(sub)
    report.add_commands(sub)
    reading.add_commands(sub)
    status.add_commands(sub)
    run.add_compile(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    common.invocation = "minewatch " + shlex.join(argv)
    from gateway.serial_lock import SerialPortBusy

    try:
        return args.func(args)
    except UsageError as exc:
        err(str(exc))
        return EXIT_CONFIG
    except BrokenPipeError:
        # `minewatch config show site.toml | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except SerialPortBusy as exc:
        holder = exc.holder.describe() if exc.holder else "?"
        err(tr(getattr(args, "lang", "en"), "port_busy", port=exc.port, holder=holder,
               lock=exc.path))
        return EXIT_BUSY
