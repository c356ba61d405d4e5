"""`minewatch run` (the daemon, on the wall clock or a simulated one) and `minewatch compile`
(every detector kernel into the install's cache)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    command_parser,
    err,
    load_config,
    numba_cache,
    number_arg,
    time_arg,
)

__all__ = ["add_compile", "add_run", "cmd_compile", "cmd_run"]


def cmd_compile(args: argparse.Namespace) -> int:
    from gateway.numba_cache import main as compile_main

    return compile_main([])


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg is None:
        return EXIT_CONFIG
    moved = numba_cache(cfg)
    from gateway.clock import SimClock, WallClock
    from gateway.daemon import Gateway
    from gateway.logs import setup_logging
    from gateway.memory import release_llvm_pages

    # `import numba` (by the daemon) faulted in 100 MB of LLVM: give them back before the
    # kernels load, which fault back what loading uses (13 MB off the example pond's peak RSS)
    release_llvm_pages()

    setup_logging(args.log_level, json_lines=args.log_format == "json")
    if moved:
        logging.getLogger("minewatch.daemon").warning(moved, extra={"event": "numba_cache_moved"})
    if args.time_scale is not None or args.epoch is not None:
        if args.epoch is None:
            err("--time-scale needs --epoch (the simulated time at --anchor)")
            return EXIT_CONFIG
        clock = SimClock(args.epoch, args.time_scale or 1.0, args.anchor)
    else:
        clock = WallClock()
    try:
        gw = Gateway(cfg, clock)
    except ValueError as exc:
        err(str(exc))
        return EXIT_CONFIG
    try:
        duration = args.duration
        if args.until is not None:
            duration = args.until - clock.now()
        asyncio.run(gw.run(duration=duration))
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def add_run(sub) -> None:
    run = command_parser(sub, "run", "run the gateway daemon", """
  minewatch run --config /etc/minewatch/site.toml
  minewatch run --config site.toml --log-format text --log-level debug
  minewatch run --config site.toml --time-scale 60 --epoch 2026-07-21T06:00:00+08:00 \\
      --anchor 1790000000      (a simulated clock, shared with firmware-sim serve)
""", cmd_run, json_flag=False)
    run.add_argument("--config", required=True, type=Path)
    run.add_argument("--epoch", type=time_arg,
                     help="simulation: simulated time at --anchor (ISO 8601 or epoch s)")
    run.add_argument("--time-scale", type=number_arg(1e-3, 1e6),
                     help="simulation: simulated seconds per real second")
    run.add_argument("--anchor", type=time_arg, help="simulation: wall-clock epoch seconds at "
                     "which simulated time is --epoch (give firmware-sim the same)")
    run.add_argument("--duration", type=number_arg(0, 10 * 365 * 86400.0),
                     help="stop after this many seconds of clock time")
    run.add_argument("--until", type=time_arg,
                     help="stop when the clock reaches this time (ISO 8601 or epoch s)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="json", choices=["json", "text"])


def add_compile(sub) -> None:
    command_parser(sub, "compile", "compile every detector kernel into the install's cache "
                   "(done by the install; a later start or replay is then warm)", """
  minewatch compile
""", cmd_compile, json_flag=False)

