"""The field engineer's commands against the real simulator, on Modbus TCP and on a pseudo-terminal
RTU line: `config init` templates, `device scan` (unit ids and line settings), `device write`
(confirmation, read-back, the simulator's refusal), the serial port lock, `--lang`, `--help`
and the exit codes of broken configs. Every CLI call is a real subprocess, as on a laptop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_sim.devices import SiteSource, load_site_devices
from firmware_sim.scenario import load_scenario
from firmware_sim.slave import (
    LineSettings,
    Reply,
    open_pty_pair,
    serve_rtu_over_tcp,
    serve_rtu_serial,
    serve_tcp,
)
from gateway.clock import SimClock
from gateway.serial_lock import SerialPortBusy, SerialPortLock, hold_bus_port, lock_path
from tests.support.services import free_port, python_cli, wait_for_line
from tests.support.sites import ROOT, example_site
from tests.support.slave import Slave

TEMPLATES = ("tailings_pond", "underground_mine", "open_pit", "chemical_plant", "metallurgy")
_LOCALE = ("LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE")


def minewatch(*args: str, env: dict | None = None, stdin=subprocess.DEVNULL,
              lock_dir: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in an English locale unless `env` says otherwise."""
    base = {k: v for k, v in os.environ.items() if k not in _LOCALE}
    base["LANG"] = "C.UTF-8"
    if lock_dir is not None:
        base["MINEWATCH_LOCK_DIR"] = str(lock_dir)
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=90, stdin=stdin,
                          env={**base, **(env or {})})


class WritableSource:
    """A device whose holding registers take writes, as a radar's setup registers do."""

    def __init__(self, unit: int = 1, size: int = 32):
        self.unit = unit
        self.holding = [0] * size
        self.holding[5] = 1500  # installation height, cm
        self.writes: list[tuple[int, list[int]]] = []

    def units(self) -> set[int]:
        return {self.unit}

    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        if table != "holding" or address + count > len(self.holding):
            return Reply(exception=2)
        return Reply(registers=self.holding[address:address + count])

    def write(self, unit: int, table: str, address: int, values: list) -> Reply:
        if table != "holding" or address + len(values) > len(self.holding):
            return Reply(exception=2)
        self.holding[address:address + len(values)] = [int(v) for v in values]
        self.writes.append((address, [int(v) for v in values]))
        return Reply()


def _site_source(cfg_path: Path) -> SiteSource:
    scenario = load_scenario("rainstorm")
    clock = SimClock(scenario.epoch + 30 * 3600, 1.0)
    _, devices = load_site_devices(cfg_path)
    return SiteSource(devices, scenario, clock.now)


@pytest.fixture
def sim_tcp(tmp_path: Path):
    """firmware-sim serve as its own process: the example pond, units 1 and 2."""
    port = free_port()
    cfg = example_site(tmp_path, modbus_port=port, mqtt_port=free_port())
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(cfg), "--listen", f"127.0.0.1:{port}", log=tmp_path / "sim.log")
    wait_for_line(tmp_path / "sim.log", '"listening"')
    yield cfg, port
    sim.terminate()
    sim.wait(5)


@pytest.fixture
def rtu_line(tmp_path: Path):
    """The example pond's two devices on a pseudo-terminal RS-485 line set to 19200 8N1."""
    master, slave_path = open_pty_pair()
    cfg = example_site(tmp_path, modbus_port=1, mqtt_port=free_port())
    source = _site_source(cfg)
    try:
        with Slave(lambda: serve_rtu_serial(source, master, LineSettings(19200, "N"))):
            yield slave_path
    finally:
        os.close(master)


# --------------------------------------------------------------------------- config

@pytest.mark.parametrize("template", TEMPLATES)
def test_config_init_writes_a_valid_template(tmp_path: Path, template: str) -> None:
    out = tmp_path / template / "site.toml"
    r = minewatch("config", "init", "--template", template, "--out", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("#") and "EDIT" in text  # commented, with the lines to change
    v = minewatch("config", "validate", str(out), "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    summary = json.loads(v.stdout)
    assert summary["ok"] and summary["devices"] >= 1 and summary["points"] >= 4
    # without --out it prints the same text, for a pipe
    r = minewatch("config", "init", "--template", template)
    assert r.returncode == 0 and r.stdout == text


def test_config_init_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "site.toml"
    out.write_text("# my edited config\n", encoding="utf-8")
    r = minewatch("config", "init", "--template", "open_pit", "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr and str(out) in r.stderr
    assert out.read_text(encoding="utf-8") == "# my edited config\n"
    r = minewatch("config", "init", "--template", "open_pit", "--out", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert 'kind = "open_pit"' in out.read_text(encoding="utf-8")


def test_broken_configs_exit_2_naming_file_and_key(tmp_path: Path) -> None:
    good = (ROOT / "config" / "templates" / "tailings_pond.toml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(good.replace("orange = 1255.0", "orange = 1250.0")
                      .replace('device = "ai_box"\nchannel = "ai2"',
                               'device = "ai_bx"\nchannel = "ai2"'), encoding="utf-8")
    v = minewatch("config", "validate", str(broken))
    assert v.returncode == 2
    assert f"{broken}:" in v.stderr
    assert "points[0].thresholds.orange" in v.stderr and "out of order" in v.stderr
    assert "points[4].device" in v.stderr and "unknown device 'ai_bx'" in v.stderr
    j = json.loads(minewatch("config", "validate", str(broken), "--json").stdout)
    assert {p["key"] for p in j["problems"]} >= {"points[0].thresholds.orange", "points[4].device"}
    assert all(p["line"] for p in j["problems"])
    for args in (("device", "test", "radar_wl1", "--config", str(broken)),
                 ("run", "--config", str(broken), "--duration", "1"),
                 ("status", "--config", str(broken)),
                 ("alerts", "test", "--config", str(broken)),
                 ("device", "plan", "--config", str(broken))):
        r = minewatch(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "points[0].thresholds.orange" in r.stderr, args
    # bad usage is 2 as well, and names the option
    r = minewatch("device", "scan", "--bus", "tcp://127.0.0.1:1", "--units", "0-300")
    assert r.returncode == 2 and "--units" in r.stderr


# --------------------------------------------------------------------------- scan and read

@pytest.mark.integration
@pytest.mark.timeout(120)
def test_scan_finds_the_simulated_units_over_tcp(sim_tcp) -> None:
    _, port = sim_tcp
    r = minewatch("device", "scan", "--bus", f"tcp://127.0.0.1:{port}", "--units", "1-4",
                  "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [row["unit"] for row in report["found"]] == [1, 2]
    # register 0 is outside both maps: the exception reply proves the device is there
    assert all(row["answer"] == "exception" and row["exception_code"] == 2
               for row in report["found"])
    r = minewatch("device", "scan", "--bus", f"tcp://127.0.0.1:{port}", "--units", "1-2",
                  "--address", "100")
    assert r.returncode == 0 and " 2  tcp" in r.stdout and "registers" in r.stdout
    r = minewatch("device", "scan", "--bus", f"tcp://127.0.0.1:{port}", "--units", "5-6")
    assert r.returncode == 1 and "no device answered" in r.stdout


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_scan_finds_units_and_baud_rate_on_an_rtu_line(rtu_line: str, tmp_path: Path) -> None:
    r = minewatch("device", "scan", "--port", rtu_line, "--baud", "9600,19200", "--parity", "N",
                  "--units", "1-3", "--json", lock_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {(row["unit"], row["baudrate"], row["parity"]) for row in report["found"]} == {
        (1, 19200, "N"), (2, 19200, "N")}
    at_9600 = next(t for t in report["tried"] if t["baudrate"] == 9600)
    assert at_9600["answered"] == 0 and at_9600["noise"]  # the devices garble at the wrong baud
    assert not report["mixed_settings"]
    r = minewatch("device", "scan", "--port", rtu_line, "--baud", "9600,19200", "--units", "1-2",
                  lock_dir=tmp_path)
    assert r.returncode == 0 and "19200 8N1" in r.stdout and "garbled" in r.stdout
    # and the registers, in every type and order, over the same line
    r = minewatch("device", "read", "--port", rtu_line, "--baud", "19200", "--unit", "2",
                  "--address", "100", "--count", "2", "--json", lock_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 1000 < json.loads(r.stdout)[0]["raw"] * 0.1 < 4000  # a VW frequency, Hz
    # and one poll with the profile, from a config whose bus is this line
    (tmp_path / "rtu").mkdir()
    cfg = example_site(tmp_path / "rtu", modbus_port=1, mqtt_port=free_port(), replace={
        'transport = "tcp"\nhost = "127.0.0.1"\nport = 1\n':
        f'transport = "rtu"\nserial_port = "{rtu_line}"\nbaudrate = 19200\nparity = "N"\n'})
    r = minewatch("device", "test", "vw_logger_a", "--config", str(cfg), "--json",
                  lock_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [p["quality"] for p in json.loads(r.stdout)["points"]] == ["good", "good"]
    assert not list(tmp_path.glob("LCK..*"))  # every command let go of the port


# --------------------------------------------------------------------------- write

@pytest.mark.integration
@pytest.mark.timeout(120)
def test_write_to_the_simulator_reports_its_refusal(sim_tcp) -> None:
    _, port = sim_tcp
    r = minewatch("device", "write", "--bus", f"tcp://127.0.0.1:{port}", "--unit", "1",
                  "--address", "5", "--value", "2000", "--yes")
    assert r.returncode == 1
    assert "exception 1 (illegal function)" in r.stderr and "not written" in r.stderr
    j = json.loads(minewatch("device", "write", "--bus", f"tcp://127.0.0.1:{port}", "--unit", "1",
                             "--address", "5", "--value", "2000", "--yes", "--json").stdout)
    assert j["written"] is False and j["exception_code"] == 1 and j["before"] == [2000]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_write_reads_back_and_asks_first(tmp_path: Path) -> None:
    source = WritableSource(unit=7)
    port = free_port()
    with Slave(lambda: serve_tcp(source, "127.0.0.1", port)):
        bus = f"tcp://127.0.0.1:{port}"
        r = minewatch("device", "write", "--bus", bus, "--unit", "7", "--address", "5",
                      "--value", "2000", "--yes", "--json")
        assert r.returncode == 0, r.stderr
        j = json.loads(r.stdout)
        assert j["before"] == [1500] and j["read_back"] == [2000] and j["verified"]
        assert source.holding[5] == 2000
        # a float in word-swapped order over FC16, addressed as the manual prints it (1-based)
        r = minewatch("device", "write", "--bus", bus, "--unit", "7", "--address", "11",
                      "--address-base", "1", "--value", "12.5", "--type", "float32",
                      "--order", "CDAB", "--yes")
        assert r.returncode == 0, r.stderr
        assert source.holding[10:12] == [0x0000, 0x4148] and "read back" in r.stdout
        # no --yes and no terminal: shown, refused, nothing on the wire
        writes = len(source.writes)
        r = minewatch("device", "write", "--bus", bus, "--unit", "7", "--address", "5",
                      "--value", "1", "--lang", "en")
        assert r.returncode == 2 and "--yes" in r.stderr and "about to write" in r.stderr
        assert len(source.writes) == writes and source.holding[5] == 2000
        # at a terminal it asks: "no" leaves the value, "yes" writes
        for answer, code, value in ((b"no\n", 1, 2000), (b"yes\n", 0, 1800)):
            master, slave = os.openpty()
            proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "device", "write",
                                     "--bus", bus, "--unit", "7", "--address", "5", "--value",
                                     "1800", "--lang", "en"], cwd=ROOT, stdin=slave,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            os.close(slave)
            os.write(master, answer)
            out, err = proc.communicate(timeout=60)
            os.close(master)
            assert proc.returncode == code, err
            assert "type 'yes' to write" in err and "now it holds 0x07D0 (2000)" in err
            assert source.holding[5] == value
        # a value that does not fit the type is bad usage
        r = minewatch("device", "write", "--bus", bus, "--unit", "7", "--address", "5",
                      "--value", "70000", "--yes")
        assert r.returncode == 2 and "uint16" in r.stderr


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_write_on_an_rtu_line(tmp_path: Path) -> None:
    source = WritableSource(unit=3)
    master, slave_path = open_pty_pair()
    try:
        with Slave(lambda: serve_rtu_serial(source, master, LineSettings(9600, "N"))):
            r = minewatch("device", "write", "--port", slave_path, "--unit", "3", "--address",
                          "2", "--value", "0x0102", "--yes", "--json", lock_dir=tmp_path)
    finally:
        os.close(master)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verified"] and source.holding[2] == 0x0102


# --------------------------------------------------------------------------- the port lock

@pytest.mark.integration
@pytest.mark.timeout(120)
def test_serial_lock_names_the_holder(rtu_line: str, tmp_path: Path) -> None:
    lock = SerialPortLock(rtu_line, command="minewatch run --config /etc/minewatch/site.toml",
                          directory=tmp_path).acquire()
    try:
        assert lock.path == lock_path(rtu_line, tmp_path) and lock.path.exists()
        for args in (("device", "scan", "--port", rtu_line, "--units", "1-2"),
                     ("device", "read", "--port", rtu_line, "--unit", "1", "--address", "1"),
                     ("device", "write", "--port", rtu_line, "--unit", "1", "--address", "5",
                      "--value", "1", "--yes")):
            r = minewatch(*args, lock_dir=tmp_path)
            assert r.returncode == 4, (args, r.stderr)
            assert f"pid {os.getpid()}" in r.stderr
            assert "minewatch run --config /etc/minewatch/site.toml" in r.stderr
        # a second opener in this process fails too, and so does one through a symlink
        alias = tmp_path / "ttyRS485"
        alias.symlink_to(rtu_line)
        with pytest.raises(SerialPortBusy) as busy:
            SerialPortLock(str(alias), directory=tmp_path).acquire()
        assert busy.value.holder.pid == os.getpid() and "minewatch run" in str(busy.value)
    finally:
        lock.release()
    assert not lock.path.exists()
    r = minewatch("device", "scan", "--port", rtu_line, "--baud", "19200", "--units", "1",
                  lock_dir=tmp_path)
    assert r.returncode == 0, r.stderr


def test_the_daemon_side_waits_for_the_port(tmp_path: Path) -> None:
    from gateway.config.model import Bus

    os.environ["MINEWATCH_LOCK_DIR"] = str(tmp_path)
    try:
        bus = Bus("rs485", "rtu", None, None, str(tmp_path / "ttyS9"), 9600, "N", 1, 8, 1.0, 0, 1)
        tcp = Bus("dtu", "tcp", "127.0.0.1", 502, None, 9600, "N", 1, 8, 1.0, 0, 4)
        cli = SerialPortLock(bus.serial_port, command="minewatch device scan").acquire()

        async def daemon() -> tuple[float, object]:
            asyncio.get_running_loop().call_later(0.3, cli.release)
            started = time.monotonic()
            held = await hold_bus_port(bus, command="minewatch run", retry=0.05)
            return time.monotonic() - started, held

        waited, held = asyncio.run(daemon())
        assert waited >= 0.25 and held.held
        assert "minewatch run" in held.path.read_text()
        held.release()
        assert asyncio.run(hold_bus_port(tcp)) is None  # a socket has no port to lock
    finally:
        del os.environ["MINEWATCH_LOCK_DIR"]


# --------------------------------------------------------------------------- language and help

@pytest.mark.integration
@pytest.mark.timeout(120)
def test_lang_switches_tables_not_json(sim_tcp) -> None:
    cfg, port = sim_tcp
    scan = ("device", "scan", "--bus", f"tcp://127.0.0.1:{port}", "--units", "1-2")
    zh = minewatch(*scan, "--lang", "zh")
    assert zh.returncode == 0 and "站号" in zh.stdout and "应答" in zh.stdout
    assert "异常码 2（非法数据地址）" in zh.stdout
    en = minewatch(*scan, "--lang", "en")
    assert "unit" in en.stdout and "answer" in en.stdout and "站号" not in en.stdout
    by_locale = minewatch(*scan, env={"LANG": "zh_CN.UTF-8"})
    assert "站号" in by_locale.stdout
    assert "站号" not in minewatch(*scan, env={"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}).stdout
    j = minewatch(*scan, "--json", "--lang", "zh")
    assert set(json.loads(j.stdout)["found"][0]) >= {"unit", "answer", "exception_code"}
    test = minewatch("device", "test", "radar_wl1", "--config", str(cfg), "--lang", "zh")
    assert test.returncode == 0 and "测点" in test.stdout and "质量" in test.stdout
    v = minewatch("config", "validate", str(cfg), "--lang", "zh")
    assert "配置有效" in v.stdout


def test_every_command_has_help_with_examples_and_lang() -> None:
    from gateway.cli import build_parser

    parser = build_parser()
    top = parser.format_help()
    for code in ("0  success", "2  bad usage", "3  the daemon", "4  the serial port"):
        assert code in top
    leaves = [("run",), ("config", "init"), ("config", "validate"), ("config", "show"),
              ("alerts", "list"), ("alerts", "test"), ("device", "scan"), ("device", "read"),
              ("device", "test"), ("device", "write"), ("device", "plan"), ("replay",),
              ("status",)]
    for leaf in leaves:
        r = minewatch(*leaf, "--help")
        assert r.returncode == 0, leaf
        assert "examples:" in r.stdout and "minewatch " + " ".join(leaf) in r.stdout, leaf
        assert "--lang" in r.stdout, leaf


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_cli_is_refused_while_the_daemon_polls_the_line(tmp_path: Path) -> None:
    master, slave_path = open_pty_pair()
    cfg = example_site(tmp_path, modbus_port=1, mqtt_port=free_port(), replace={
        'transport = "tcp"\nhost = "127.0.0.1"\nport = 1\n':
        f'transport = "rtu"\nserial_port = "{slave_path}"\nbaudrate = 9600\nparity = "N"\n',
        'period = "10min"': 'period = "2s"', 'abnormal_period = "5min"': 'abnormal_period = "2s"'})
    source = _site_source(cfg)
    locks = tmp_path / "locks"
    env = {**os.environ, "MINEWATCH_LOCK_DIR": str(locks), "PYTHONUNBUFFERED": "1"}
    try:
        with Slave(lambda: serve_rtu_serial(source, master, LineSettings(9600, "N"))):
            with open(tmp_path / "gw.log", "w") as log:
                gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config",
                                       str(cfg), "--log-format", "text"], cwd=ROOT, env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_for_line(tmp_path / "gw.log", "first values read", timeout=60)
                r = minewatch("device", "scan", "--port", slave_path, "--units", "1-2",
                              lock_dir=locks)
                assert r.returncode == 4, r.stderr
                assert f"pid {gw.pid}" in r.stderr and "minewatch run --config" in r.stderr
            finally:
                gw.terminate()
                gw.wait(30)
            assert not list(locks.glob("LCK..*"))  # a clean stop lets go of the port
            r = minewatch("device", "scan", "--port", slave_path, "--baud", "9600",
                          "--units", "1-2", lock_dir=locks)
            assert r.returncode == 0, r.stderr
    finally:
        os.close(master)


# --------------------------------------------------------------------------- pure parts

def test_locale_decides_the_default_language() -> None:
    from gateway.i18n import default_lang

    assert default_lang({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert default_lang({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_TW.UTF-8"}) == "zh"
    assert default_lang({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}) == "en"  # LC_ALL wins
    assert default_lang({}) == "en"


def test_a_foreign_uucp_lock_is_honoured_while_its_process_lives(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyUSB0")
    path = lock_path(port, tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path.write_text(f"{other.pid:>10d}\n")  # minicom's kind: a pid, no flock
        with pytest.raises(SerialPortBusy) as busy:
            SerialPortLock(port, directory=tmp_path).acquire()
        assert busy.value.holder.pid == other.pid and not busy.value.holder.ours
    finally:
        other.kill()
        other.wait()
    with SerialPortLock(port, directory=tmp_path, command="minewatch device scan") as lock:
        assert lock.held and "minewatch device scan" in path.read_text()  # the dead one's is stale
    assert not path.exists()


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_scan_through_a_serial_device_server_past_silent_units(tmp_path: Path) -> None:
    port = free_port()
    cfg = example_site(tmp_path, modbus_port=port, mqtt_port=free_port(),
                       replace={"unit = 2\n": "unit = 9\n"})
    source = _site_source(cfg)
    with Slave(lambda: serve_rtu_over_tcp(source, "127.0.0.1", port)):
        # seven silent units in a row: pymodbus drops the socket after a few, the scan goes on
        r = minewatch("device", "scan", "--bus", f"rtu-over-tcp://127.0.0.1:{port}", "--units",
                      "1-9", "--timeout", "0.2", "--json")
    assert r.returncode == 0, r.stderr
    assert [row["unit"] for row in json.loads(r.stdout)["found"]] == [1, 9]


def test_status_without_a_daemon_is_exit_3(tmp_path: Path) -> None:
    cfg = example_site(tmp_path, modbus_port=free_port(), mqtt_port=free_port(),
                       listen=f"127.0.0.1:{free_port()}")
    r = minewatch("status", "--config", str(cfg))
    assert r.returncode == 3 and "does not answer" in r.stderr
