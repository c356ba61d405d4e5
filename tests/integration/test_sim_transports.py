"""`firmware-sim serve` speaks real Modbus: Debian's libmodbus client (`mbpoll`) reads it over TCP
and over RTU on a pseudo-terminal, a wrong baud rate or parity fails as on site, scheduled and
switched-on faults happen when they should, and the simulator reports its own load."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from firmware_sim.scenario import load_scenario
from tests.support.services import free_port, python_cli, require_binary, wait_for_line


def _serve(tmp: Path, name: str, *args: str) -> tuple[subprocess.Popen, list[dict], Path]:
    log = tmp / f"sim-{name}.log"
    stats = tmp / f"sim-{name}.json"
    sim = python_cli("firmware_sim.cli", "serve", "--stats-file", str(stats), *args, log=log)
    wait_for_line(log, '"listening"', timeout=30)
    time.sleep(0.3)  # every listener's line is printed before the next is opened
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return sim, lines, stats


def _mbpoll(*args: str) -> subprocess.CompletedProcess:
    mbpoll = require_binary("mbpoll")
    return subprocess.run([mbpoll, "-1", "-o", "0.5", *args], capture_output=True, text=True,
                          timeout=20)


def _values(out: str) -> list[int]:
    # "[2]: \t37912 (-27624)": mbpoll adds the signed reading of a word above 32767
    return [int(line.split("\t")[-1].split()[0]) for line in out.splitlines()
            if line.startswith("[")]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_mbpoll_reads_the_radar_over_tcp(tmp_path: Path) -> None:
    scenario = load_scenario("rainstorm")
    port = free_port()
    at = scenario.epoch + 36 * 3600
    sim, _, stats = _serve(tmp_path, "tcp", "--scenario", "rainstorm", "--listen",
                           f"127.0.0.1:{port}", "--epoch", str(at))
    try:
        # holding registers 0x0001 (empty height, mm) and 0x0003 (level), 1-based in mbpoll
        res = _mbpoll("-m", "tcp", "-p", str(port), "-a", "1", "-t", "4", "-r", "2", "-c", "3",
                      "127.0.0.1")
        time.sleep(1.5)
        served = json.loads(stats.read_text())
    finally:
        sim.terminate()
        sim.wait(10)
    assert res.returncode == 0, res.stdout + res.stderr
    empty, _, level = _values(res.stdout)
    # the example site's radar hangs at 1262 m: level elevation = 1262 - empty height
    assert 1262.0 - empty / 1000 == pytest.approx(float(scenario.value("WL-01", at)), abs=0.01)
    assert level == 20000 - empty  # installation height 20 m - empty height
    assert served["requests"] >= 1 and served["cpu_s"] > 0


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_mbpoll_on_the_rs485_line_and_wrong_line_settings_fail(tmp_path: Path) -> None:
    scenario = load_scenario("gas_leak")
    at = scenario.epoch + 16.3 * 3600  # inside the CO plume
    sim, lines, stats = _serve(tmp_path, "rtu", "--scenario", "gas_leak", "--epoch", str(at))
    try:
        gas = next(x for x in lines if x["buses"] == ["rs485_gas"])
        assert gas["transport"] == "rtu" and gas["units"] == [2, 3, 4, 5]
        line = ["-m", "rtu", "-b", "9600", "-d", "8", "-s", "1", "-t", "3", "-r", "1", "-c", "1"]
        co = _mbpoll(*line, "-a", "2", "-P", "none", gas["serial_port"])
        o2 = _mbpoll("-m", "rtu", "-b", "9600", "-P", "none", "-t", "3", "-r", "1", "-c", "2",
                     "-a", "5", gas["serial_port"])
        wrong_baud = _mbpoll(*line, "-a", "2", "-P", "none", "-b", "19200", gas["serial_port"])
        wrong_parity = _mbpoll(*line, "-a", "2", "-P", "even", gas["serial_port"])
        time.sleep(1.5)
        served = json.loads(stats.read_text())
    finally:
        sim.terminate()
        sim.wait(10)
    assert co.returncode == 0, co.stdout + co.stderr
    (ppm,) = _values(co.stdout)
    assert ppm == pytest.approx(float(scenario.value("CO-01", at)), abs=4)
    assert ppm > 24  # the plume is past the CO orange level: a real reading, not a zero
    assert o2.returncode == 0 and len(_values(o2.stdout)) == 2  # a second unit on one line
    assert wrong_baud.returncode != 0 and not _values(wrong_baud.stdout)
    assert wrong_parity.returncode != 0 and not _values(wrong_parity.stdout)
    listener = next(x for x in served["listeners"] if x["buses"] == ["rs485_gas"])
    assert listener["line_mismatches"] >= 2  # answered with noise, as a real line would


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_scheduled_and_switched_on_faults(tmp_path: Path) -> None:
    scenario = load_scenario("faults_month")
    port = free_port()
    radar = ["-m", "tcp", "-p", str(port), "-a", "1", "-t", "4", "-r", "2", "-c", "1",
             "127.0.0.1"]
    logger = ["-m", "tcp", "-p", str(port), "-a", "2", "-t", "4", "-r", "101", "-c", "1",
              "127.0.0.1"]
    results = {}
    # the schedule: radar_wl1 silent on day 18 (0-2 h), vw_logger_a exception 4 on day 20 (0-1 h)
    for label, offset_h in (("before", 17 * 24), ("radar_timeout", 18 * 24 + 0.5),
                            ("logger_exception", 20 * 24 + 0.5)):
        sim, _, stats = _serve(tmp_path, label, "--scenario", "faults_month", "--listen",
                               f"127.0.0.1:{port}", "--epoch",
                               str(scenario.epoch + offset_h * 3600))
        try:
            results[label] = (_mbpoll(*radar), _mbpoll(*logger))
            time.sleep(1.2)
            results[label] += (json.loads(stats.read_text()),)
        finally:
            sim.terminate()
            sim.wait(10)
    ok_radar, ok_logger, before = results["before"]
    assert ok_radar.returncode == 0 and ok_logger.returncode == 0 and before["faults_acted"] == 0
    silent, logger_ok, _ = results["radar_timeout"]
    assert silent.returncode != 0 and "timed out" in (silent.stdout + silent.stderr).lower()
    assert logger_ok.returncode == 0  # the other device on the line is not affected
    radar_ok, failing, acted = results["logger_exception"]
    assert radar_ok.returncode == 0
    assert failing.returncode != 0 and "slave device or server failure" in (
        failing.stdout + failing.stderr).lower()
    assert acted["faults_acted"] >= 1

    # switched on at run time, whatever the schedule says
    sim, _, _ = _serve(tmp_path, "switched", "--scenario", "faults_month", "--listen",
                       f"127.0.0.1:{port}", "--fault", "radar_wl1:exception:2")
    try:
        refused = _mbpoll(*radar)
    finally:
        sim.terminate()
        sim.wait(10)
    assert refused.returncode != 0 and "illegal data address" in (
        refused.stdout + refused.stderr).lower()
