"""The `minewatch` parser, assembled from one module per command group, and `main`: run the
chosen command and turn the failures every command shares into their exit codes. --lang and
--json are taken before or after the command; text values typed in a GBK terminal are read as
GB18030, and output the terminal cannot show is escaped rather than raised."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from gateway.cli import (
    alerts,
    cmd,
    common,
    config,
    device,
    reading,
    replay,
    report,
    run,
    status,
)
from gateway.cli.common import EXIT_BUSY, EXIT_CONFIG, EXIT_OK, UsageError, err, global_options
from gateway.i18n import default_lang, tr
from gateway.text_files import decode_arg

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    import gateway.cli

    parser = argparse.ArgumentParser(prog="minewatch", description=gateway.cli.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    global_options(parser)
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
    cmd.add_commands(sub)
    run.add_compile(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    for stream in (sys.stdout, sys.stderr):
        # a GBK console, or a path of undecodable bytes: print what can be shown, never raise
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    args.lang = getattr(args, "lang", None) or default_lang()
    args.json = getattr(args, "json", False)
    common.lang = args.lang
    common.invocation = "minewatch " + shlex.join(
        a.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for a in argv)
    from gateway.serial_lock import SerialPortBusy

    try:
        if args.json and not getattr(args, "json_ok", True):
            raise UsageError(f"`{_command(args)}` has no --json output")
        _decode_values(args)
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


def _command(args: argparse.Namespace) -> str:
    return " ".join(x for x in (args.cmd, getattr(args, "sub", None)) if x)


def _decode_values(args: argparse.Namespace) -> None:
    """Text values as typed (gateway.text_files.decode_arg); paths stay the bytes they name."""
    for name, value in vars(args).items():
        try:
            if isinstance(value, str):
                setattr(args, name, decode_arg(value))
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                setattr(args, name, [decode_arg(v) for v in value])
        except ValueError as exc:
            raise UsageError(f"--{name.replace('_', '-')}: {exc}") from None
