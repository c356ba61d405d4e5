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
