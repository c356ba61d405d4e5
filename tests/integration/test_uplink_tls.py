"""TLS with a test CA and a client certificate, a password from a file, and the failures a site
meets on day one: a wrong password and a broker certificate the gateway does not trust. Each
failure gives one clear log line, the gateway keeps retrying without crashing, and no secret
appears in its log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.services import (
    ROOT,
    Mosquitto,
    MqttRecorder,
    free_port,
    python_cli,
    require_binary,
    wait_for_line,
)
from tests.support.sites import example_site

PASSWORD = "s3cret-Pa55-for-test"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
             f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=MineWatch test {name}", cwd=d)


def _signed(d: Path, name: str, ca: str, cn: str, san: str | None = None) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt"]
    if san:
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        args += ["-extfile", f"{name}.ext"]
    _openssl(*args, cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    require_binary("openssl")
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "rogue_ca")
    _signed(d, "server", "ca", "127.0.0.1", "IP:127.0.0.1,DNS:localhost")
    _signed(d, "client", "ca", "gw01")
    return d


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Path):
    binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
    passwd = require_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    pwfile = tmp_path / "passwd"
    subprocess.run([passwd, "-b", "-c", str(pwfile), "gw01", PASSWORD], check=True,
                   capture_output=True)
    tls_port = free_port()
    extra = (
        "per_listener_settings true\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        "require_certificate true\n"
        f"allow_anonymous false\npassword_file {pwfile}\n"
    )
    # the first listener (plain, anonymous) is the platform's, for the recorder
    b = Mosquitto(binary, tmp_path / "mosquitto", free_port(), extra)
    b.start()
    b.tls_port = tls_port
    yield b
    b.stop()


def _site(tmp_path: Path, broker, pki: Path, *, ca: str = "ca.crt", password: str = PASSWORD):
    (tmp_path / "mqtt.password").write_text(password + "\n")
    return example_site(tmp_path, modbus_port=free_port(), mqtt_port=broker.tls_port, replace={
        'protocol = "5"': (
            'protocol = "5"\nusername = "gw01"\n'
            f'password_file = "{tmp_path / "mqtt.password"}"\n'
            f'tls_ca = "{pki / ca}"\ntls_cert = "{pki / "client.crt"}"\n'
            f'tls_key = "{pki / "client.key"}"\nreconnect_max = "2s"')})


def _run_gateway(cfg: Path, log: Path) -> subprocess.Popen:
    # no simulator: the Modbus side fails (a comm fault), the uplink is what is under test; a
    # fast simulated clock makes the 10-minute polls come every second
    return python_cli("gateway.cli", "run", "--config", str(cfg), "--epoch", str(time.time()),
                      "--time-scale", "600", log=log)


def _stop(gw: subprocess.Popen) -> int:
    gw.send_signal(signal.SIGTERM)
    try:
        return gw.wait(timeout=20)
    except subprocess.TimeoutExpired:
        gw.kill()  # a gateway that does not stop fails the test, and is not left running
        gw.wait(5)
        raise


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_tls_with_client_certificate_and_password(tmp_path: Path, tls_broker, pki: Path) -> None:
    recorder = MqttRecorder(tls_broker.port, "minewatch/v1/#")
    cfg = _site(tmp_path, tls_broker, pki)
    gw = _run_gateway(cfg, tmp_path / "gw.log")
    try:
        wait_for_line(tmp_path / "gw.log", '"event": "mqtt_connected"', timeout=30)
        deadline = time.monotonic() + 30
        while not recorder.on("fault") and time.monotonic() < deadline:
            time.sleep(0.1)  # three failed polls of the missing devices make fault events
        assert recorder.on("status")[0]["state"] == "online"
    finally:
        rc = _stop(gw)
        recorder.close()
    assert rc == 0
    assert recorder.on("fault"), "no event crossed the TLS uplink"
    assert PASSWORD not in (tmp_path / "gw.log").read_text()


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case,needle", [
    ("wrong_password", "refused the connection"),
    ("untrusted_broker", "certificate is not trusted"),
])
def test_uplink_failures_are_clear_retried_and_secret_free(tmp_path: Path, tls_broker, pki: Path,
                                                          case: str, needle: str) -> None:
    if case == "wrong_password":
        cfg = _site(tmp_path, tls_broker, pki, password="not-the-password")
    else:
        cfg = _site(tmp_path, tls_broker, pki, ca="rogue_ca.crt")
    log = tmp_path / "gw.log"
    gw = _run_gateway(cfg, log)
    try:
        line = wait_for_line(log, needle, timeout=30)
        time.sleep(3.0)  # it keeps retrying ...
        assert gw.poll() is None  # ... without crashing
    finally:
        rc = _stop(gw)
    assert rc == 0
    text = log.read_text()
    assert "retrying" in line
    assert text.count(needle) < 5  # one clear line, not one per retry
    assert PASSWORD not in text and "not-the-password" not in text


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_alerts_test_crosses_tls_as_the_uplink_does(tmp_path: Path, tls_broker, pki: Path) -> None:
    """`minewatch alerts test` takes its client from the uplink's factory: the same client
    certificate, password file and verified broker certificate, so it is delivered through the
    TLS listener, and refused by a broker whose certificate the site does not trust."""
    recorder = MqttRecorder(tls_broker.port, "minewatch/v1/#")
    cfg = _site(tmp_path, tls_broker, pki)
    try:
        good = subprocess.run([sys.executable, "-m", "gateway.cli", "alerts", "test", "--config",
                               str(cfg), "--json"], cwd=ROOT, capture_output=True, text=True,
                              timeout=30)
        assert good.returncode == 0, good.stderr
        report = json.loads(good.stdout)
        assert report["ok"] and report["reason_code"] == 0
        deadline = time.monotonic() + 10
        while not recorder.on("alert") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert recorder.on("alert")[0]["event_id"] == report["event_id"]
    finally:
        recorder.close()
    (tmp_path / "rogue").mkdir()
    rogue = _site(tmp_path / "rogue", tls_broker, pki, ca="rogue_ca.crt")
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "alerts", "test", "--config",
                          str(rogue), "--lang", "en"], cwd=ROOT, capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 1 and "certificate verify failed" in bad.stderr, bad.stderr
    assert PASSWORD not in good.stdout + good.stderr + bad.stdout + bad.stderr
