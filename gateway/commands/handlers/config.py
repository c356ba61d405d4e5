"""`config`: a new site config from the platform, whole (`config`: the TOML text) or as a patch
(`patch`: TOML merged into the running file, `gateway/config/patch.py`), with `by` and an
optional `reason`.

It is validated like the file on SIGHUP (the same located problems, and the same refusal of
sections that take a restart, `[commands]` among them: the key that guards the commands is never
changed by a command), written over the config file, applied between polls, and audited with
who sent it. The answer is the new version (a digest of the text) or the problems; the running
config is untouched by a refused one. The new config is then on probation: when it cannot reach
its devices or its broker within `[commands] config_probation` it is rolled back to the one
before (`gateway/probation.py`).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from gateway.commands.request import Args, CommandError, Request

NAME = "config"
SUMMARY = "push a whole site config or a TOML patch: validated, applied, audited"
EXAMPLES = """
  minewatch cmd config --config site.toml --file new-site.toml --reason "flood season levels"
  minewatch cmd config --config site.toml --patch wl01.toml --by "李工"
      (wl01.toml:  [[points]]  name = "WL-01"  thresholds = { red = 1255.5 })
"""
MAX_TEXT = 1024 * 1024


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", type=Path, help="a whole site config to push")
    what.add_argument("--patch", type=Path, help="a TOML patch to merge into the running one")
    p.add_argument("--by", default=None, help="who (default: this user)")
    p.add_argument("--reason", default=None)


def request(ns: argparse.Namespace) -> dict:
    path = ns.file or ns.patch
    out = {"config" if ns.file else "patch": path.read_text(encoding="utf-8"),
           "by": ns.by or getpass.getuser()}
    if ns.reason:
        out["reason"] = ns.reason
    return out


async def run(gw, req: Request) -> dict:
    a = Args(req, {"config", "patch", "by", "reason"})
    whole = a.text("config", max_len=MAX_TEXT, raw=True)
    patch = a.text("patch", max_len=MAX_TEXT, raw=True)
    if (whole is None) == (patch is None):
        raise CommandError("bad_request", "give config (a whole file) or patch (one of them)")
    by = a.text("by", required=True, max_len=100)
    reason = a.text("reason", max_len=500) or ""
    assert by is not None
    text = whole
    if patch is not None:
        from gateway.config.patch import PatchProblem, merge_patch

        try:
            text = merge_patch(gw.cfg.source, patch)
        except PatchProblem as exc:
            where = f"patch:{exc.line}" if exc.line else "patch"
            raise CommandError("invalid_config", f"the patch cannot be merged: {exc}",
                               problems=[{"path": exc.path, "message": str(exc),
                                          "line": exc.line,
                                          "text": f"{where}: {exc.path}: {exc}"}]) from None
    assert text is not None
    return await gw.push_config(text, by, reason, req.id)


def show(result: dict, lang: str) -> str:
    zh = lang == "zh"
    if not result["changed"]:
        return f"配置未变（版本 {result['version']}）" if zh else \
            f"no change: version {result['version']} is running"
    lines = [f"已应用配置 {result['version']}（原 {result['previous']}），试运行 "
             f"{result['probation_s']:g} 秒" if zh else
             f"applied config {result['version']} (was {result['previous']}); on probation "
             f"for {result['probation_s']:g} s"]
    for point in result.get("thresholds_changed", []):
        lines.append(f"  {'阈值变更' if zh else 'thresholds changed'}: {point}")
    return "\n".join(lines)
