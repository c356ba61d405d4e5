"""The receipt contract: the platform's receipt payload against its JSON Schema, the gateway's
own reading of it (`parse_receipt`) agreeing with the schema, and the config keys that turn
receipts on and size the disk-full reserve."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from gateway.alerts.encoder import parse_receipt
from gateway.config import ConfigError, load_site

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA = json.loads((ROOT / "config" / "schema" / "receipt.schema.json").read_text())
EXAMPLE = ROOT / "config" / "examples" / "tailings_pond.toml"
EID = "5f0c6f7e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"

GOOD = [
    {"schema": "minewatch/receipt/1", "site": "130825-TP001", "gateway": "gw01", "seq": 8,
     "seq_event_id": EID, "ts": 1784476800000},
    {"schema": "minewatch/receipt/1", "seq": 0},
    {"schema": "minewatch/receipt/1", "event_ids": [EID]},
    {"schema": "minewatch/receipt/1", "seq": 3, "event_ids": [EID]},
]
BAD = [
    {"seq": 3},  # no schema
    {"schema": "minewatch/receipt/1"},  # neither seq nor event_ids
    {"schema": "minewatch/receipt/1", "seq": -1},
    {"schema": "minewatch/receipt/1", "seq": "7"},
    {"schema": "minewatch/receipt/1", "event_ids": ["not-an-id"]},
    {"schema": "minewatch/receipt/1", "seq": 3, "seq_event_id": "x"},
    {"schema": "minewatch/receipt/2", "seq": 3},
]


@pytest.mark.parametrize("doc", GOOD)
def test_good_receipts_validate_and_the_gateway_reads_them(doc: dict) -> None:
    jsonschema.validate(doc, SCHEMA)
    r = parse_receipt(json.dumps(doc).encode(), "130825-TP001", "gw01")
    assert r.seq == doc.get("seq") and list(r.event_ids) == doc.get("event_ids", [])
    assert r.seq_event_id == doc.get("seq_event_id")


@pytest.mark.parametrize("doc", BAD)
def test_bad_receipts_fail_the_schema_and_the_gateway_alike(doc: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    with pytest.raises(ValueError):
        parse_receipt(json.dumps(doc).encode(), "130825-TP001", "gw01")


def test_a_receipt_for_another_gateway_is_refused() -> None:
    doc = {**GOOD[0], "gateway": "gw02"}
    jsonschema.validate(doc, SCHEMA)  # well formed, but not ours
    with pytest.raises(ValueError, match="gw02"):
        parse_receipt(json.dumps(doc).encode(), "130825-TP001", "gw01")
    with pytest.raises(ValueError, match="not JSON"):
        parse_receipt(b"\xff{", "130825-TP001", "gw01")


def test_receipts_are_on_in_the_example_and_their_keys_are_checked(tmp_path: Path) -> None:
    cfg = load_site(EXAMPLE)
    assert cfg.mqtt.receipts is True and cfg.mqtt.receipt_timeout == 60.0
    assert (cfg.outbox.reserve_bytes, cfg.outbox.hold_max_bytes) == (4 << 20, 16 << 20)
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'receipt_timeout = "60s"', 'receipt_timeout = "200ms"').replace(
        "receipts = true", 'receipts = "yes"') + "\n[outbox]\nreserve_bytes = -1\n"
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_site(path)
    keys = {p.path for p in info.value.problems}
    assert keys == {"uplink.mqtt.receipts", "uplink.mqtt.receipt_timeout", "outbox.reserve_bytes"}
