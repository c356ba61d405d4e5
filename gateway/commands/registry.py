"""The commands the gateway takes: every module of `gateway/commands/handlers/` is one, found by
name, so a new command is one new module (and its request schema)."""

from __future__ import annotations

import argparse
import functools
import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Command", "commands"]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    examples: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    request: Callable[[argparse.Namespace], dict]
    run: Callable[..., Awaitable[dict]]
    show: Callable[[dict, str], str]


@functools.cache
def commands() -> dict[str, Command]:
    """Every command by name, in name order."""
    from gateway.commands import handlers

    out = {}
    for info in sorted(pkgutil.iter_modules(handlers.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{handlers.__name__}.{info.name}")
        out[mod.NAME] = Command(mod.NAME, mod.SUMMARY, mod.EXAMPLES, mod.add_arguments,
                                mod.request, mod.run, mod.show)
    return dict(sorted(out.items()))
