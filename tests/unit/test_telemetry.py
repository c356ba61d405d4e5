"""Telemetry: 5-minute statistics, and report by exception with a deadband and a maximum silence,
the same in every wire encoding (each payload checked against its schema, then decoded)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gateway.batch import Batch
from gateway.config import load_site
from gateway.encodings import ENCODINGS
from gateway.encodings.decode import decode, encoding_of
from gateway.telemetry import Telemetry

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "config" / "schema" / "telemetry.schema.json").read_text())
COMPACT = json.loads((ROOT / "config" / "schema" / "telemetry-compact.schema.json").read_text())
T0 = 1_784_476_800.0


def _docs(messages) -> list[dict]:
    """Each payload checked against the schema of its encoding, then decoded."""
    out = []
    for _, payload in messages:
        wire = encoding_of(payload)
        if wire in ("json", "zlib"):
            raw = json.loads(zlib.decompress(payload) if wire == "zlib" else payload)
            jsonschema.validate(raw, SCHEMA if raw["schema"].endswith("/1") else COMPACT)
        out.append(decode(payload))
    return out


def _site(tmp_path: Path):
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    text = text.replace('channel = "empty_height"',
                        'channel = "empty_height"\ndeadband = 0.05\nmax_silence = "1h"')
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return load_site(path)


def _values(messages) -> list[dict]:
    return [p for d in _docs(messages) if d["kind"] == "values" for p in d["points"]]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_report_by_exception_deadband_and_max_silence(tmp_path: Path, encoding: str) -> None:
    tel = Telemetry(_site(tmp_path), "t/telemetry", encoding=encoding)
    idx = np.array([0], np.int64)

    def read(t: float, v: float, q: int = 0) -> list[dict]:
        tel.add(Batch("d", t, idx, np.array([v]), np.array([q], np.uint8)))
        return [p for p in _values(tel.due(t)) if p["point"] == "WL-01"]

    assert [p["value"] for p in read(T0, 1253.00)] == [1253.00]  # first value: reported
    assert read(T0 + 600, 1253.03) == []  # within the 5 cm deadband
    assert [p["value"] for p in read(T0 + 1200, 1253.06)] == [1253.06]  # moved 6 cm
    assert read(T0 + 1800, 1253.07) == []
    assert [p["value"] for p in read(T0 + 1200 + 3600, 1253.07)] == [1253.07]  # max silence
    (lost,) = read(T0 + 5400, np.nan, 5)  # a comm failure is reported at once, as a quality
    assert lost["value"] is None and lost["quality"] == 5


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_five_minute_stats_windows(tmp_path: Path, encoding: str) -> None:
    tel = Telemetry(_site(tmp_path), "t/telemetry", encoding=encoding)
    idx = np.array([0, 1], np.int64)
    tel.due(T0)
    for k, v in enumerate((1253.0, 1253.2, 1253.1)):
        tel.add(Batch("d", T0 + 60 * k, idx, np.array([v, 12.0]), np.zeros(2, np.uint8)))
    stats = [d for d in _docs(tel.due(T0 + 300)) if d["kind"] == "stats"]
    (doc,) = stats
    wl = doc["points"][0]
    assert (wl["min"], wl["max"], wl["count"]) == (1253.0, 1253.2, 3)
    assert abs(wl["mean"] - 1253.1) < 1e-9


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_chemical_site_sends_its_gases_in_real_time_and_its_tanks_by_exception(
        encoding: str) -> None:
    # docs/chemical_metallurgy.md#quantities: %LEL and toxic gases every 20 s like mine gases
    cfg = load_site(ROOT / "config" / "examples" / "chemical_plant.toml")
    tel = Telemetry(cfg, "t/telemetry", encoding=encoding)
    idx = np.arange(len(cfg.points), dtype=np.int64)
    tel.due(T0)
    tel.add(Batch("d", T0 + 5, idx, np.ones(len(idx)), np.zeros(len(idx), np.uint8)))
    docs = _docs(tel.due(T0 + 20))
    realtime = {p["point"] for d in docs if d["kind"] == "realtime" for p in d["points"]}
    by_exception = {p["point"] for d in docs if d["kind"] == "values" for p in d["points"]}
    gases = {p.name for p in cfg.points if p.quantity in ("combustible_gas", "nh3", "cl2")}
    assert gases == {"LEL-101", "LEL-102", "LEL-103", "NH3-201", "NH3-202", "NH3-203",
                     "NH3-204", "CL2-301"}
    assert realtime == gases
    assert by_exception == {p.name for p in cfg.points} - gases  # the tank points


def test_a_sample_counts_in_the_window_of_its_own_time_however_fast_the_clock(
        tmp_path: Path) -> None:
    # a simulated clock at x36000 runs the loop's 0.2 s as two hours: the windows must still be
    # the samples' own, each one whole, and every one handed to the history store
    seen = []
    tel = Telemetry(_site(tmp_path), "t/telemetry", on_window=seen.append)
    idx = np.array([0], np.int64)
    for t, v in ((T0 + 10, 1.0), (T0 + 310, 2.0), (T0 + 320, 4.0), (T0 + 3610, 8.0)):
        tel.add(Batch("d", t, idx, np.array([v]), np.zeros(1, np.uint8)))
    stats = [d for d in _docs(tel.due(T0 + 7200)) if d["kind"] == "stats"]
    got = [(d["window_start"] / 1000 - T0, d["points"][0]["count"], d["points"][0]["mean"])
           for d in stats]
    assert got == [(0.0, 1, 1.0), (300.0, 2, 3.0), (3600.0, 1, 8.0)]
    assert [(w.start - T0, int(w.count[0])) for w in seen] == [(0.0, 1), (300.0, 2), (3600.0, 1)]
    tel.add(Batch("d", T0 + 7210, idx, np.array([5.0]), np.zeros(1, np.uint8)))
    tel.flush(T0 + 7250)  # at a stop: the open window as far as it got, for the history only
    assert (seen[-1].start - T0, seen[-1].end - T0, int(seen[-1].count[0])) == (7200.0, 7250.0, 1)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_value_read_in_a_maintenance_window_is_flagged_when_sent_after_it(
        tmp_path: Path, encoding: str) -> None:
    from types import SimpleNamespace

    cfg = _site(tmp_path)
    tel = Telemetry(cfg, "t/telemetry", encoding=encoding)
    until = np.full(len(cfg.points), -np.inf)
    until[0] = T0 + 600  # WL-01 under maintenance until T0 + 10 min
    tel.maintenance = SimpleNamespace(any=True, until=until)
    idx = np.array([0], np.int64)
    tel.add(Batch("d", T0 + 599, idx, np.array([1253.0]), np.zeros(1, np.uint8)))
    (inside,) = [p for p in _values(tel.due(T0 + 601)) if p["point"] == "WL-01"]
    assert inside["maintenance"] is True  # read at 599 s, sent at 601 s: taken under maintenance
    tel.add(Batch("d", T0 + 1200, idx, np.array([1254.0]), np.zeros(1, np.uint8)))
    (after,) = [p for p in _values(tel.due(T0 + 1200)) if p["point"] == "WL-01"]
    assert "maintenance" not in after
    (doc,) = _docs([tel.measured([0], T0 + 1300, "req-7")])  # a measure command's answer
    assert (doc["kind"], doc["command_id"]) == ("measured", "req-7")
    stats = [d for d in _docs(tel.due(T0 + 1500)) if d["kind"] == "stats"]
    assert stats and "maintenance" not in stats[-1]["points"][0]
    until[0] = T0 + 9000  # a window that spans a whole statistics window: flagged there too
    tel.add(Batch("d", T0 + 1510, idx, np.array([1254.0]), np.zeros(1, np.uint8)))
    (held,) = [d for d in _docs(tel.due(T0 + 1800)) if d["kind"] == "stats"]
    assert held["points"][0]["maintenance"] is True
    assert not any("maintenance" in p for p in held["points"][1:])


def test_a_step_of_the_wall_clock_closes_the_window_and_the_next_opens_in_the_new_time(
        tmp_path: Path) -> None:
    day = 86400.0
    tel = Telemetry(_site(tmp_path), "t/telemetry")
    idx = np.array([0, 1], np.int64)
    tel.due(T0)
    stats = []

    def read(t: float, v: float) -> None:
        tel.add(Batch("d", t, idx, np.array([v, 12.0]), np.zeros(2, np.uint8)))
        stats.extend(d for d in _docs(tel.due(t)) if d["kind"] == "stats")

    read(T0, 1253.0)
    read(T0 + 60, 1253.2)
    tel.clock_stepped(-day)  # the daemon, when the clock counts a step back of a day
    for k in range(10):
        read(T0 - day + 120 + 60 * k, 1253.4)
    # the window before the step with its two samples, then 5-minute windows in the new time
    # (not one window left open for a day, counting every sample until the clock is back)
    assert [(d["window_start"], d["points"][0]["count"]) for d in stats] == [
        (T0 * 1000, 2), ((T0 - day) * 1000, 3), ((T0 - day + 300) * 1000, 5)]
