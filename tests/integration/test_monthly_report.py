"""The monthly report of a scenario played through the daemon on the simulated clock, checked
against the scenario's own labels (`firmware-sim labels`), never against the gateway's grading.

- rainstorm (72 h of July 2026, 10-minute polls at x6000): the one alert episode, its time at or
  above each grade and the threshold exceedances against the labelled intervals; the devices'
  online time against the gateway's running time; three manual readings entered with
  `minewatch reading add` while the gateway runs: graded, compared (one disagrees and opens a
  comparison fault, the next agrees and clears it), published and reported.
- faults_month (June 2026 whole, hourly polls at x36000): fault hours and each device's online
  rate against the labelled fault windows; the month's report JSON published just after the
  month ends, while the broker is down, and delivered after a restart of both.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from firmware_sim.labels import scenario_labels
from firmware_sim.scenario import load_scenario
from tests.support.services import MqttRecorder, free_port, python_cli, wait_for_line
from tests.support.sites import ROOT, example_site

pytestmark = pytest.mark.integration

LEVELS = ("blue", "yellow", "orange", "red")


def _schema(name: str) -> dict:
    return json.loads((ROOT / "config" / "schema" / f"{name}.schema.json").read_text())


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


class Run:
    """`firmware-sim serve` and `minewatch run` on one simulated clock."""

    def __init__(self, tmp: Path, scenario, cfg: Path, sim_port: int, scale: float):
        self.tmp, self.scenario, self.cfg, self.scale = tmp, scenario, cfg, scale
        self.anchor = time.time() + 4.0
        self.clock = ["--epoch", str(scenario.epoch), "--time-scale", str(scale), "--anchor",
                      str(self.anchor)]
        self.sim = python_cli("firmware_sim.cli", "serve", "--scenario", scenario.name,
                              "--site-config", str(cfg), "--listen", f"127.0.0.1:{sim_port}",
                              *self.clock, log=tmp / "sim.log")
        wait_for_line(tmp / "sim.log", '"listening"')
        self.gateways: list[subprocess.Popen] = []

    def now(self) -> float:
        return self.scenario.epoch + (time.time() - self.anchor) * self.scale

    def wait_until(self, t: float) -> None:
        time.sleep(max(0.0, (t - self.now()) / self.scale))

    def gateway(self, until: float, log: str = "gateway.log") -> subprocess.Popen:
        gw = python_cli("gateway.cli", "run", "--config", str(self.cfg), *self.clock, "--until",
                        str(until), log=self.tmp / log)
        self.gateways.append(gw)
        return gw

    def close(self) -> None:
        for gw in self.gateways:
            if gw.poll() is None:
                gw.kill()
        self.sim.terminate()
        self.sim.wait(5)


def _truth_cross(scenario, key: str, level: float, after: float, rising: bool) -> float:
    tau = np.arange(after - scenario.epoch, scenario.duration, 1.0)
    truth = scenario.signals[key].truth(tau)
    hit = np.flatnonzero(truth >= level if rising else truth < level)
    return scenario.epoch + float(tau[hit[0]])


@pytest.mark.timeout(240)
def test_rainstorm_report_against_labels_with_manual_readings(tmp_path: Path, mosquitto) -> None:
    scenario = load_scenario("rainstorm")
    period = 600.0
    sim_port = free_port()
    cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=mosquitto.port,
                       replace={'abnormal_period = "5min"': 'abnormal_period = "10min"',
                                "\nthresholds = {": '\ndetectors = ["threshold"]\nthresholds = {'})
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    run = Run(tmp_path, scenario, cfg, sim_port, 6000.0)
    t0 = scenario.epoch
    try:
        gw = run.gateway(t0 + scenario.duration)
        run.wait_until(t0 + 12 * 3600)  # past the readings' times: their windows are stored
        readings = [(6, "1251.26", "agrees"), (9, "1253.40", "staff gauge, wet"),
                    (10, "1251.29", "again")]
        results = []
        for hour, value, note in readings:
            proc = _cli("reading", "add", "--config", str(cfg), "--point", "WL-01", "--value",
                        value, "--at", str(t0 + hour * 3600), "--by", "张工", "--note", note,
                        "--json", "--wait", "30")
            assert proc.returncode == 0, proc.stderr + proc.stdout
            results.append(json.loads(proc.stdout))
        refused = _cli("reading", "add", "--config", str(cfg), "--point", "WL-01", "--value",
                       "1300", "--by", "张工", "--lang", "en")
        assert gw.wait(timeout=200) == 0, (tmp_path / "gateway.log").read_text()[-4000:]
        time.sleep(0.5)
    finally:
        run.close()
        recorder.close()
    log = (tmp_path / "gateway.log").read_text()[-4000:]
    # a loaded machine at x6000 misses a poll now and then; the scheduler counts each
    missed = max(json.loads(line).get("missed_deadlines", 0)
                 for line in (tmp_path / "gateway.log").read_text().splitlines()
                 if '"device_stats"' in line)

    # the out-of-range reading never reached the store: refused with the point's range
    assert refused.returncode == 2 and "outside WL-01's range [1232, 1261.85] m" in \
        refused.stderr, refused.stderr
    # graded, compared, with their events
    assert [r["state"] for r in results] == ["done"] * 3, results
    assert [r["level"] for r in results] == ["none", "blue", "none"]
    assert [r["comparison"]["agrees"] for r in results] == [True, False, True]
    assert [(e["kind"], e["state"]) for e in results[1]["events"]] == [
        ("safety", "raised"), ("fault", "raised")]
    assert [(e["kind"], e["state"]) for e in results[2]["events"]] == [
        ("safety", "cleared"), ("fault", "cleared")]
    # published: the readings as telemetry of kind manual, their events on alert and fault
    manual = [m for m in recorder.on("telemetry") if m["kind"] == "manual"]
    assert [m["points"][0]["value"] for m in manual] == [1251.26, 1253.40, 1251.29], log
    comparison = [e for e in recorder.on("fault") if e["detector"] == "comparison"]
    assert [e["state"] for e in comparison] == ["raised", "cleared"]
    assert comparison[1]["fault"]["duration_s"] == pytest.approx(3600.0)
    by_hand = [e for e in recorder.on("alert") if e["detector"] == "manual"]
    assert [(e["state"], e["level"]) for e in by_hand] == [("raised", "blue"), ("cleared", "none")]
    for doc in manual:
        jsonschema.validate(doc, _schema("telemetry"))
        assert doc["points"][0]["quality"] == 6 and doc["reading"]["by"] == "张工"
    for ev in comparison + by_hand:
        jsonschema.validate(ev, _schema("event"))
        assert ev["reading"]["quality"] == 6

    # the report, as JSON and as pages in both languages
    out = tmp_path / "2026-07.json"
    proc = _cli("report", "monthly", "--config", str(cfg), "--month", "2026-07", "--json",
                "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, _schema("report"))
    for lang in ("zh", "en"):
        page = tmp_path / f"report-{lang}.html"
        proc = _cli("report", "monthly", "--config", str(cfg), "--month", "2026-07",
                    "--lang", lang, "--out", str(page))
        assert proc.returncode == 0, proc.stderr
        text = page.read_text()
        assert text.count('<img class="plot"') == 3
        assert ("月度监测报告" in text) == (lang == "zh")

    labels = [lb for lb in scenario_labels(scenario) if lb["kind"] == "safety"]
    auto = [e for e in doc["episodes"] if e["source"] == "automatic"]
    assert len(auto) == 1 and auto[0]["point"] == "WL-01", doc["episodes"]
    episode = auto[0]
    assert episode["highest_level"] == "red" and not episode["open"]
    thresholds = dict(zip(LEVELS, (1253.0, 1254.0, 1255.0, 1256.0), strict=True))
    wl = next(p for p in doc["points"] if p["point"] == "WL-01")
    for lb in labels:
        level = lb["expected_level"]
        label_s = lb["end"] - lb["start"]
        # the grade is held until the truth passes the restore level (2 % capped at a quarter
        # of the 1 m gap) on its way down, and raised within the debounce of the crossing
        restore = _truth_cross(scenario, "WL-01", thresholds[level] - 0.25, lb["end"], False)
        held = restore - lb["start"]
        got = episode["seconds_at_or_above"][level]
        assert abs(got - held) <= (4 + missed) * period, (level, got, held, missed)
        # exceedances measured from the data: the labelled interval at the poll resolution
        ex = wl["exceedances"][level]
        assert ex["episodes"] == 1, (level, ex)
        assert abs(ex["seconds"] - label_s) <= (2 + missed) * period, (level, ex, label_s, missed)
    grades = doc["summary"]["episodes_by_grade"]
    assert grades["red"]["episodes"] == 1 and grades["blue"]["episodes"] == 1  # the manual one
    # online: every answered poll while the gateway ran
    running = doc["gateway_running"]["seconds"]  # started a few simulated hours before the epoch
    assert scenario.duration <= running <= scenario.duration + 6 * 3600, running
    for d in doc["devices"]:
        assert abs(d["online_s"] - running) <= period, (d, running)
        assert d["offline_episodes"] == 0
    assert doc["summary"]["completeness"] > 0.0
    # the manual readings beside the automatic ones, the comparison fault in the fault hours
    rows = doc["manual_readings"]
    assert [(r["value"], r["agrees"], r["level"]) for r in rows] == [
        (1251.26, True, "none"), (1253.40, False, "blue"), (1251.29, True, "none")]
    assert all(math.isfinite(r["automatic"]) for r in rows)
    assert doc["fault_hours"]["by_kind"] == {"comparison": pytest.approx(1.0)}
    manual_ep = [e for e in doc["episodes"] if e["source"] == "manual"]
    assert len(manual_ep) == 1 and manual_ep[0]["duration_s"] == pytest.approx(3600.0)
    assert "人工比测 3 次" in doc["summary"]["text"]["zh"]


FAILING = ("timeout", "exception", "crc", "garbled", "drop_connection")  # a poll gets no data
# `slow` replies within the timeout (2 s of simulated time); stuck and drift are value faults
# the detectors do not call faults at hourly polls (a pond level may hold still for two days)


@pytest.mark.timeout(300)
def test_faults_month_report_published_at_month_end_through_a_broker_outage(
        tmp_path: Path, mosquitto) -> None:
    scenario = load_scenario("faults_month")
    period = 3600.0
    sim_port = free_port()
    # hourly polls (x36000 keeps them at 100 ms of real time), a short timeout without retries
    # (Modbus waits in real time: 50 ms is 30 simulated minutes), a fault at the first bad poll
    cfg = example_site(tmp_path, modbus_port=sim_port, mqtt_port=mosquitto.port, replace={
        'abnormal_period = "5min"': 'abnormal_period = "1h"', 'period = "10min"': 'period = "1h"',
        'timeout = "1s"': 'timeout = "50ms"', "retries = 1": "retries = 0",
        "[uplink.mqtt]": "[alerts]\nfault_after = 1\n\n[uplink.mqtt]"})
    recorder = MqttRecorder(mosquitto.port, "minewatch/v1/#")
    run = Run(tmp_path, scenario, cfg, sim_port, 36000.0)
    month_end = scenario.epoch + scenario.duration  # 2026-07-01 00:00 +08:00
    try:
        # its loop looks at the month once a real second, ten simulated hours at this scale
        first = run.gateway(month_end + 30 * 3600)
        run.wait_until(month_end - 4 * 3600)
        mosquitto.stop()  # the broker is down when the month ends
        wait_for_line(tmp_path / "gateway.log", '"month": "2026-06"', timeout=60)
        assert first.wait(timeout=60) == 0, (tmp_path / "gateway.log").read_text()[-4000:]
        # the run began late in May (before the scenario's epoch): May's report went out at once
        assert [r["month"] for r in recorder.on("report")] == ["2026-05"]
        recorder.subscribed.clear()
        mosquitto.start()
        assert recorder.subscribed.wait(15), "the platform did not reconnect"
        # the same gateway started again: the report waits in its outbox
        second = run.gateway(run.now() + 8 * 36000, log="gateway2.log")
        deadline = time.monotonic() + 30
        while len(recorder.on("report")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert second.wait(timeout=60) == 0, (tmp_path / "gateway2.log").read_text()[-4000:]
    finally:
        run.close()
        recorder.close()
    reports = recorder.on("report")
    assert [r["month"] for r in reports] == ["2026-05", "2026-06"], reports
    doc = reports[1]
    jsonschema.validate(doc, _schema("report"))
    log = (tmp_path / "gateway.log").read_text()
    assert log.count('"report_committed"') == 2  # May's and June's, each once
    assert '"report_committed"' not in (tmp_path / "gateway2.log").read_text()  # once
    missed = max(json.loads(line).get("missed_deadlines", 0) for line in log.splitlines()
                 if '"device_stats"' in line)

    month_s = doc["period"]["seconds"]
    assert month_s == scenario.duration
    assert doc["gateway_running"]["fraction"] >= 0.999
    assert doc["summary"]["safety_episodes"] == 0  # a month of faults and quiet physics
    faults = [lb for lb in scenario_labels(scenario) if lb["kind"] == "fault"]
    points_of = {"radar_wl1": ["WL-01"], "vw_logger_a": ["JRX-01", "JRX-02"]}
    slop = 600.0 + missed * period  # poll times jitter by simulated minutes at this scale
    # polls are due on multiples of the period; a busy machine wakes one late by milliseconds,
    # tens of simulated seconds each here, and an outage lasts until the (late) poll that
    # answers: the lateness of each device's return polls, read from the history store
    with sqlite3.connect(tmp_path / "state" / "history.sqlite") as db:
        back = db.execute("SELECT device, t FROM device_state WHERE online=1 AND t>=? AND t<?",
                          (scenario.epoch, month_end)).fetchall()
    late: dict[str, float] = {}
    for device, t in back:
        late[device] = late.get(device, 0.0) + (t - math.floor(t / period) * period)
    for device, points in points_of.items():
        windows = [(lb["start"], lb["end"]) for lb in faults
                   if lb["point"] == device and lb["fault_kind"] in FAILING]
        # a window of an hour or more holds a poll however late it runs; a shorter one (a
        # 10-minute drop is 17 ms of real time here) holds one only if the poll was on time
        sure = [(a, b) for a, b in windows if b - a >= period]
        lost_min = sum(b - a for a, b in sure)
        lost_max = sum(math.ceil((b - a) / period) * period for a, b in windows)
        d = next(x for x in doc["devices"] if x["device"] == device)
        assert month_s - lost_max - slop - late.get(device, 0.0) <= d["online_s"] \
            <= month_s - lost_min + slop, (device, d, lost_min, lost_max, late)
        assert len(sure) <= d["offline_episodes"] <= len(windows), (device, d)
        # each labelled window is a fault of each of the device's points, as long as it lasted
        for point in points:
            for a, b in windows:
                hit = [f for f in doc["faults"] if f["point"] == point
                       and f["raised_at"] / 1000 < b + slop and f["cleared_at"] / 1000 > a]
                assert len(hit) == 1 if (a, b) in sure else len(hit) <= 1, (point, a, b, hit)
                for f in hit:
                    assert (b - a - slop if (a, b) in sure else 0) <= f["duration_s"] <= \
                        math.ceil((b - a) / period) * period + slop + late.get(device, 0.0), \
                        (point, a, b, f, late)
    dropout = next(lb for lb in faults if lb["fault_kind"] == "dropout")
    hit = [f for f in doc["faults"] if f["point"] == "JRX-02" and f["kind"] == "out_of_range"
           and abs(f["raised_at"] / 1000 - dropout["start"]) <= slop]
    assert len(hit) == 1 and abs(hit[0]["duration_s"] - (dropout["end"] - dropout["start"])) \
        <= slop, hit
    # no fault the scenario did not cause
    for f in doc["faults"]:
        device = next(d for d, pts in points_of.items() if f["point"] in pts)
        assert any(lb["point"] in (f["point"], device) and lb["start"] - slop
                   <= f["raised_at"] / 1000 <= lb["end"] + 2 * period for lb in faults), f
    assert doc["summary"]["fault_hours"] == pytest.approx(
        sum(f["hours"] for f in doc["faults"]), abs=1e-3)
    # completeness: the hours whose poll gave no good value
    wl = next(p for p in doc["points"] if p["point"] == "WL-01")
    # (the figure has six decimals)
    assert 1 - (3 + missed) / 720 - 1e-6 <= wl["completeness"] <= 1 - 2 / 720 + 1e-6, (wl, missed)
