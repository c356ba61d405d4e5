"""Security defaults of the daemon (issue 21): the status endpoint asks for its bearer token on
every request, `minewatch status` sends it, and the state the daemon writes (outbox, spool,
detector checkpoint) is not readable beyond the gateway's group. Real daemon, real HTTP, real
files; the config-level rules (no public address without `listen_public` and a token) are in
tests/unit/test_config.py."""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.services import free_port, python_cli, wait_for_line
from tests.support.sites import example_site


def _get(url: str, token: str | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _status_cli(cfg: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "status", "--config", str(cfg),
                           "--json", "--lang", "en"], capture_output=True, text=True, timeout=30)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_status_endpoint_wants_its_token_on_every_request(tmp_path: Path) -> None:
    port = free_port()
    token = secrets.token_hex(16)
    token_file = tmp_path / "status.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    listen = f"127.0.0.1:{port}"
    # nothing answers on the Modbus and MQTT ports: the endpoint is what is under test
    cfg = example_site(tmp_path, modbus_port=free_port(), mqtt_port=free_port(), listen=listen,
                       replace={f'listen = "{listen}"':
                                f'listen = "{listen}"\nstatus_token_file = "{token_file}"'})
    log = tmp_path / "gateway.log"
    gw = python_cli("gateway.cli", "run", "--config", str(cfg), log=log)
    try:
        wait_for_line(log, '"http_listening"', timeout=60)
        base = f"http://127.0.0.1:{port}"
        for path in ("/status", "/metrics", "/nothing"):
            for sent in (None, "wrong", token + "x", ""):
                code, _, headers = _get(base + path, sent)
                assert code == 401, (path, sent, code)
                assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        code, body, _ = _get(base + "/status", token)
        assert code == 200 and json.loads(body)["gateway"] == "gw01"
        code, body, _ = _get(base + "/metrics", token)
        assert code == 200 and b"minewatch_polls_total" in body

        out = _status_cli(cfg)  # reads status_token_file and sends it
        assert out.returncode == 0, out.stderr
        assert {d["device"] for d in json.loads(out.stdout)["devices"]} == {"radar_wl1",
                                                                         "vw_logger_a"}
        token_file.write_text("not-the-daemons-token\n")
        out = _status_cli(cfg)
        assert out.returncode == 3 and "401" in out.stderr and str(token_file) in out.stderr
        assert "not-the-daemons-token" not in out.stderr
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(timeout=30) == 0
    finally:
        if gw.poll() is None:
            gw.kill()
    text = log.read_text()
    assert token not in text and "with a bearer token" in text


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_state_files_are_0640_and_the_state_dir_0750(tmp_path: Path) -> None:
    cfg = example_site(tmp_path, modbus_port=free_port(), mqtt_port=free_port())
    cfg.write_text(cfg.read_text() + f'\n[storage.influx]\nurl = "http://127.0.0.1:{free_port()}"\n')
    state = tmp_path / "state"
    # what an older version (or a root shell with umask 022) left behind
    (state / "numba-cache").mkdir(parents=True)
    state.chmod(0o755)
    (state / "numba-cache").chmod(0o777)
    old = [state / "outbox.sqlite.bak", state / "numba-cache" / "kernel.nbi"]
    for f in old:
        f.write_bytes(b"old state")
        f.chmod(0o644)
    (state / "numba-cache" / "kernel.nbi").chmod(0o666)
    log = tmp_path / "gateway.log"
    gw = python_cli("gateway.cli", "run", "--config", str(cfg), "--duration", "3", log=log)
    assert gw.wait(timeout=90) == 0, log.read_text()[-3000:]

    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [state, *state.rglob("*")]}
    assert mode["state"] == 0o750
    # created by the daemon: born 0640 (the process umask is 027), never world-readable
    for name in ("outbox.sqlite", "influx_spool.sqlite", "detectors.npz"):
        assert mode[name] == 0o640, (name, oct(mode[name]))
    for path in state.rglob("*"):
        limit = 0o750 if path.is_dir() else 0o640
        assert stat.S_IMODE(path.stat().st_mode) & ~limit == 0, (path, oct(mode[path.name]))
    assert mode["numba-cache"] == 0o750 and mode["kernel.nbi"] == 0o640
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    (tightened,) = [x for x in lines if x.get("event") == "state_modes_tightened"]
    assert tightened["count"] == 4 and "outbox.sqlite.bak 644->640" in tightened["msg"]
    assert os.access(state / "outbox.sqlite", os.R_OK | os.W_OK)  # still the gateway's own
