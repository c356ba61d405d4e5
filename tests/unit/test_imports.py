"""Importing any module of gateway/, detectors/ or firmware_sim/ does nothing but define things.

pytest's --doctest-modules imports every one of them to find its examples, and the daemon, the
CLI and the simulator import many of them at start: an import that opened a socket, started a
thread, set up logging, installed a signal handler, changed the environment, printed or wrote a
file would act in every one of those places. Checked in a fresh interpreter, from an empty
working folder with an empty HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = ("gateway", "detectors", "firmware_sim")

PROBE = r"""
import importlib, json, logging, os, pkgutil, signal, sys, threading

def sockets():
    fds = os.listdir("/proc/self/fd")
    out = 0
    for fd in fds:
        try:
            out += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return out

def snapshot():
    root = logging.getLogger()
    return {"env": dict(os.environ), "threads": threading.active_count(),
            "handlers": len(root.handlers), "level": root.level,
            "signals": {s.name: repr(signal.getsignal(s))
                        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)},
            "sockets": sockets(), "cwd": sorted(os.listdir(".")),
            "home": sorted(os.listdir(os.environ["HOME"]))}

before = snapshot()
modules = []
for package in sys.argv[2:]:
    pkg = importlib.import_module(package)
    modules.append(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        importlib.import_module(info.name)
        modules.append(info.name)
after = snapshot()
changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
with open(sys.argv[1], "w") as fh:
    json.dump({"modules": modules, "changed": changed}, fh)
"""


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    report = tmp_path / "report.json"
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT),
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(report), *PACKAGES], cwd=work,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == "", (proc.stdout, proc.stderr)
    result = json.loads(report.read_text(encoding="utf-8"))
    assert {"gateway.cli", "detectors.threshold", "firmware_sim.cli"} <= set(result["modules"])
    assert result["changed"] == {}, result["changed"]
