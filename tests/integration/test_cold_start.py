"""Cold start (issue 13): `minewatch compile`, which the install runs, leaves nothing for a later
replay to compile, so the first replay after an install takes a second, not half a minute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.integration


def test_after_compile_a_replay_compiles_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "compile"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0 and "detector kernels ready" in run.stdout, run.stderr
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert any(p.suffix == ".nbc" for p in before)
    csv = tmp_path / "gnss.csv"
    csv.write_text("time,GP\n" + "".join(f"2026-01-{d:02d},{0.2 * d:.2f}\n" for d in range(1, 29)))
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "replay", str(csv), "--quantity",
                          "gnss_disp", "--out", str(tmp_path / "out.csv")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    after = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert after == before  # every kernel came from the cache: nothing new was compiled
