"""What every `minewatch` command shares: exit codes, error lines, column padding, loading the
site config (its problems in the user's language), the numba cache, and a leaf command's parser
(help with examples, --lang, --json; both also taken before the command, see `global_options`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.i18n import LANGS

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_CONFIG", "EXIT_DAEMON", "EXIT_BUSY", "ROOT",
           "UsageError", "command_parser", "err", "number_arg", "time_arg", "zone_arg", "global_options", "invocation",
           "lang", "load_config", "nothing", "numba_cache", "pad", "group_parser"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DAEMON, EXIT_BUSY = 0, 1, 2, 3, 4
ROOT = Path(__file__).resolve().parent.parent.parent
invocation = "minewatch"  # this invocation, written into serial port locks (set by `main`)
lang = "en"  # the language of this invocation (--lang or the locale; set by `main`)


class UsageError(ValueError):
    """A bad option value: exit 2 with the message."""


def err(text: str) -> None:
    print(f"minewatch: {text}", file=sys.stderr)


def pad(text: str, width: int, right: bool = False) -> str:
    """Pad to `width` terminal columns: a Chinese character takes two."""
    import unicodedata

    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    fill = " " * max(0, width - cols)
    return fill + text if right else text + fill


def load_config(path: str | Path, in_lang: str | None = None):
    """The site config, or None after printing every problem (in `in_lang`, default: this
    invocation's language)."""
    from gateway.config import ConfigError, load_site

    try:
        return load_site(path)
    except ConfigError as exc:
        # every problem, or (ConfigFileError) why the file could not be read at all
        err(exc.render(in_lang or lang))
        return None


def numba_cache(cfg) -> str | None:
    """Point numba at its cache; a message when it had to move (None when it did not)."""
    # compile once, cache on disk: a warm start must not be a JIT storm. The install's cache,
    # else the state folder's, seeded from it (gateway/numba_cache.py); on a full or read-only
    # disk, in memory instead, since numba dies when it cannot write its cache
    from gateway.numba_cache import configure, import_numba, seed
    from gateway.state_dir import numba_cache_dir

    folder, moved = numba_cache_dir(configure(cfg.gateway.state_dir / "numba-cache"))
    if moved:
        seed(folder)  # in memory, but warm: the install's compiled kernels copied in
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    import_numba()  # now that the folder is final: numba reads it when it is imported
    return moved


def number_arg(lo: float, hi: float, integer: bool = False):
    """An argparse `type`: a number (an integer: also 0x...) within lo..hi, never nan or inf;
    argparse prints the refusal with the option's name and exits 2."""

    def parse(text: str):
        try:
            value = int(text, 0) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if integer else 'a number'}") from None
        if not lo <= value <= hi:  # (nan compares false)
            raise argparse.ArgumentTypeError(f"{text} is out of range: allowed {lo:g} to {hi:g}")
        return value

    parse.__name__ = "integer" if integer else "number"
    return parse


def time_arg(text: str) -> float:
    """An argparse `type`: an ISO 8601 time or epoch seconds, between 1970 and 2200."""
    from gateway.clock import parse_epoch

    try:
        value = parse_epoch(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time "
                                         "(2026-07-20T06:00:00+08:00) or epoch seconds") from None
    if not 0.0 <= value <= 7_258_118_400.0:  # 1970..2200, and never nan or inf
        raise argparse.ArgumentTypeError(f"{text!r} is not a time between 1970 and 2200")
    return value


def zone_arg(text: str) -> str:
    """An argparse `type`: an IANA time zone name."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r} (an IANA name such as "
                                         "Asia/Shanghai)") from None
    return text


class nothing:  # noqa: N801 (used like a context manager function)
    """`with lock or nothing():` on a socket bus, where there is no port to lock."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_LANG_HELP = ("language of tables and messages (default: from the locale; JSON keys stay "
              "English)")


def global_options(p: argparse.ArgumentParser, json_flag: bool = True) -> None:
    """--lang and --json, taken wherever they are typed: before the command, between a group
    and its command, or after it. Each level leaves them unset unless given (argparse would
    otherwise let a command's default overwrite what was typed before it); `main` fills in
    the defaults."""
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help=_LANG_HELP)
    if json_flag:
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="machine-readable output")


def command_parser(sub, name: str, help_text: str, examples: str, func,
                   json_flag: bool = True) -> argparse.ArgumentParser:
    """A leaf command: help with examples, --lang, and usually --json."""
    p = sub.add_parser(name, help=help_text, description=help_text,
                       epilog="examples:\n" + examples.strip("\n"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    global_options(p, json_flag)
    p.set_defaults(func=func, json_ok=json_flag)
    return p


def group_parser(sub, name: str, help_text: str, examples: list[str]):
    """A command group (config, alerts, device): its sub-commands' parser."""
    p = sub.add_parser(name, help=help_text, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n" + "\n".join(f"  {e}" for e in examples))
    global_options(p)
    return p.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
