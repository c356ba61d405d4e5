"""The wire encodings of telemetry say the same thing: compact JSON, its zlib form and the
Sparkplug B protobuf decode to the same points, values, qualities and read times, and those are
the full JSON's values to `digits` significant digits (every bit of them at 17)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.batch import Batch
from gateway.config import load_site
from gateway.encodings import ENCODINGS, rounded
from gateway.encodings.decode import decode, encoding_of
from gateway.telemetry import Telemetry

ROOT = Path(__file__).resolve().parent.parent.parent
T0 = 1_784_476_800.0


def _run(cfg, encoding: str) -> list[dict]:
    """Two polls of every device of the site: float32-widened values, a missing value with its
    comm_fail, a suspect one; then a closed stats window. Decoded messages, in order."""
    tel = Telemetry(cfg, "t/telemetry", encoding=encoding)
    rng = np.random.default_rng(7)
    n = len(cfg.points)
    values = rng.normal(100.0, 40.0, (2, n)).astype(np.float32).astype(np.float64)
    quality = np.zeros((2, n), np.uint8)
    values[1, 0], quality[1, 0] = np.nan, 5
    quality[1, n - 1] = 1
    docs = []
    tel.due(T0)
    for k in range(2):
        for d, dev in enumerate(sorted({p.device for p in cfg.points})):
            idx = np.array([p.index for p in cfg.points if p.device == dev], np.int64)
            tel.add(Batch(dev, T0 + 60 * k + 0.25 * d, idx, values[k, idx], quality[k, idx]))
        payloads = tel.due(T0 + 60 * k + 30)
        assert {encoding_of(p) for _, p in payloads} <= {"json" if encoding in (
            "compact", "json") else encoding}
        docs += [decode(p) for _, p in payloads]
    docs += [decode(p) for _, p in tel.due(T0 + 300)]
    return docs


def _points(docs: list[dict]) -> list[tuple]:
    """Every point of every message, in a stable order: (kind, point, quality, counts and read
    time, values)."""
    out = []
    for d in docs:
        stats = d["kind"] == "stats"
        for p in sorted(d["points"], key=lambda p: p["point"]):
            exact = (p["count"], p["samples"]) if stats else (p["observed_at"],)
            values = (p["min"], p["max"], p["mean"]) if stats else (p["value"],)
            out.append((d["kind"], p["point"], p["quality"], exact, values))
    return out


@pytest.mark.parametrize("site", ["chemical_plant", "tailings_pond"])
def test_compressed_and_protobuf_telemetry_decode_to_the_same_values(site: str) -> None:
    cfg = load_site(ROOT / "config" / "examples" / f"{site}.toml")
    compact = _points(_run(cfg, "compact"))
    assert compact and any(row[0] == "stats" for row in compact)
    assert _points(_run(cfg, "zlib")) == compact
    assert _points(_run(cfg, "protobuf")) == compact
    # the full JSON carries every bit: the compact ones carry it to 7 significant digits
    full = _points(_run(cfg, "json"))
    assert len(full) == len(compact)
    for f, c in zip(full, compact, strict=True):
        assert f[:4] == c[:4]
        for a, b in zip(f[4], c[4], strict=True):
            assert (a is None and b is None) or rounded(np.array([a]), 7)[0] == b


def test_seventeen_digits_carry_every_bit(tmp_path: Path) -> None:
    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text.replace("[uplink.mqtt]", "[uplink.mqtt]\ndigits = 17"), encoding="utf-8")
    cfg = load_site(path)
    full = _points(_run(cfg, "json"))
    for encoding in ("compact", "protobuf"):
        assert _points(_run(cfg, encoding)) == full


def test_the_compact_encodings_cost_a_value_less_than_the_full_json() -> None:
    """On the chemical plant's points, one or two a device (the benchmark prints the figures for
    10,000 points, 50 a device)."""
    cfg = load_site(ROOT / "config" / "examples" / "chemical_plant.toml")
    idx = np.arange(len(cfg.points), dtype=np.int64)
    size = {}
    for encoding in ENCODINGS:
        tel = Telemetry(cfg, "t/telemetry", encoding=encoding)
        tel.due(T0)
        tel.add(Batch("d", T0 + 1, idx, np.round(np.linspace(1, 99, len(idx)), 2),
                      np.zeros(len(idx), np.uint8)))
        size[encoding] = sum(len(p) for _, p in tel.due(T0 + 2) if decode(p)["kind"] == "values")
    assert max(size["compact"], size["zlib"], size["protobuf"]) < 0.6 * size["json"]


def test_protobuf_without_its_package_is_a_config_problem(tmp_path: Path) -> None:
    """A site asking for protobuf where the package is not installed hears so at validation,
    with the line and the install command, not at the first telemetry message."""
    import subprocess
    import sys

    text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text.replace("[uplink.mqtt]", '[uplink.mqtt]\nencoding = "protobuf"'),
                    encoding="utf-8")
    hide = ("import sys; sys.modules['google'] = None; from gateway.cli import main; "
            "raise SystemExit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", hide, "config", "validate", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "uplink.mqtt.encoding" in out and "pip install 'minewatch[protobuf]'" in out, out


@pytest.mark.parametrize("target", ["protobuf", "json", "zlib"])
def test_a_second_target_gets_the_outbox_telemetry_in_its_own_encoding(target: str) -> None:
    """The outbox holds the first target's encoding (compact); a target with another encoding
    gets the same points, values, qualities and times in its own (gateway/encodings/transcode.py),
    a maintenance flag and a measure command's id included."""
    from types import SimpleNamespace

    from gateway.encodings import encoder
    from gateway.encodings.transcode import Transcoder
    from gateway.telemetry import catalog

    cfg = load_site(ROOT / "config" / "examples" / "tailings_pond.toml")
    site = catalog(cfg)
    again = Transcoder(site, encoder(target, site))
    tel = Telemetry(cfg, "t/telemetry", encoding="compact")
    until = np.full(len(cfg.points), -np.inf)
    until[1] = T0 + 9000
    tel.maintenance = SimpleNamespace(any=True, until=until)
    tel.due(T0)
    idx = np.arange(len(cfg.points), dtype=np.int64)
    values = np.round(np.linspace(1, 99, len(idx)), 3)
    quality = np.zeros(len(idx), np.uint8)
    values[0], quality[0] = np.nan, 5
    tel.add(Batch("d", T0 + 1, idx, values, quality))
    stored = [p for _, p in tel.due(T0 + 2)] + [p for _, p in tel.due(T0 + 300)]
    stored.append(tel.measured([1, 2], T0 + 301, "req-9")[1])
    assert {decode(p)["kind"] for p in stored} == {"values", "stats", "measured"}
    for payload in stored:
        sent = again(payload)
        assert encoding_of(sent) == ("json" if target == "json" else target)
        assert _points([decode(sent)]) == _points([decode(payload)])
        before, after = decode(payload), decode(sent)
        assert after.get("command_id") == before.get("command_id")
        assert [p.get("maintenance") for p in after["points"]] == [
            p.get("maintenance") for p in before["points"]]
    manual = b'{"schema":"minewatch/telemetry/1","kind":"manual","points":[]}'
    assert again(manual) == manual  # not transcodable: as it is


@pytest.mark.parametrize("stored", ["compact", "json", "zlib", "protobuf"])
@pytest.mark.parametrize("target", ["compact", "json", "zlib", "protobuf"])
def test_the_first_target_sends_telemetry_of_a_former_encoding_in_its_own(stored: str,
                                                                          target: str) -> None:
    """The outbox's telemetry was committed under `stored` (the first target's encoding until a
    restart changed it to `target`): the platform gets it in `target`, values intact; telemetry
    already in `target` goes byte for byte as stored."""
    from dataclasses import replace

    from gateway.encodings.decode import encoded_as
    from gateway.outbox import PRIORITY_TELEMETRY
    from gateway.outbox_drain import OutboxRow
    from gateway.uplink.session import MineWatchSession

    cfg = load_site(ROOT / "config" / "examples" / "tailings_pond.toml")
    m = replace(cfg.mqtt, encoding=target)
    session = MineWatchSession(cfg, m, lambda: T0)
    tel = Telemetry(cfg, "t/telemetry", encoding=stored)
    tel.due(T0)
    idx = np.arange(len(cfg.points), dtype=np.int64)
    tel.add(Batch("d", T0 + 1, idx, np.round(np.linspace(1, 99, len(idx)), 3),
                  np.zeros(len(idx), np.uint8)))
    payloads = [p for _, p in tel.due(T0 + 2)] + [p for _, p in tel.due(T0 + 300)]
    assert {decode(p)["kind"] for p in payloads} == {"values", "stats"}
    for payload in payloads:
        assert encoded_as(payload) == stored
        row = OutboxRow(1, PRIORITY_TELEMETRY, f"{session.home}telemetry", payload, 0, None,
                        None, 0)
        sent = session.message(row)[1]
        assert encoded_as(sent) == target
        assert _points([decode(sent)]) == _points([decode(payload)])
        if stored == target:
            assert sent == payload
