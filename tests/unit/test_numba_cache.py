"""The compiled detector kernels: filled once at install, found warm by every later process,
and copied for a process that cannot write the install's cache (issue 13, cold start)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gateway.numba_cache as nc


def test_a_process_that_cannot_write_the_install_cache_gets_a_seeded_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install = tmp_path / "install"
    (install / "detectors").mkdir(parents=True)
    (install / "detectors" / "rate._step-1.py311.nbi").write_bytes(b"index")
    (install / "detectors" / "rate._step-1.py311.1.nbc").write_bytes(b"code")
    monkeypatch.setattr(nc, "INSTALL_CACHE", install)
    real_writable = nc._writable
    monkeypatch.setattr(nc, "_writable", lambda p: p != install and real_writable(p))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    own = tmp_path / "state" / "numba-cache"
    assert nc.configure(own) == own and os.environ["NUMBA_CACHE_DIR"] == str(own)
    assert (own / "detectors" / "rate._step-1.py311.1.nbc").read_bytes() == b"code"
    # NUMBA_CACHE_DIR set by the operator wins
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert nc.configure(own) == tmp_path / "mine"
