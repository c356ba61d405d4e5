"""The platform encoder: event and status payloads as the city platform receives them.

This is the one module that knows the wire format (docs/contracts.md#events, `config/schema/`), so
a platform with its own interface document is served by another encoder without touching the rest.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.config.quantities import QUANTITIES

__all__ = ["LEVEL_NAMES", "ROMAN", "EVENT_SCHEMA", "RECEIPT_SCHEMA", "topic", "time_fields",
           "safety_message", "fault_message", "status_payload", "commissioning_event",
           "with_sent_at", "parse_receipt", "Receipt"]

LEVEL_NAMES = ("none", "blue", "yellow", "orange", "red")
ROMAN = (None, "IV", "III", "II", "I")  # blue = IV (一般) ... red = I (特别严重)
LEVEL_ZH = ("无", "蓝色", "黄色", "橙色", "红色")
EVENT_SCHEMA = "minewatch/event/1"
RECEIPT_SCHEMA = "minewatch/receipt/1"
QUALITY_NAMES = ("good", "suspect", "stale", "out_of_range", "device_fault", "comm_fail",
                 "manual")
QUALITY_ZH = ("正常", "可疑", "数据过期", "超量程", "设备故障", "通信故障", "人工读数")


def topic(prefix: str, site: str, gateway: str, kind: str) -> str:
    """`<prefix>/<site>/<gateway>/{status,alert,fault,telemetry,health}`."""
    return f"{prefix}/{site}/{gateway}/{kind}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_fields(name: str, ts: float, tz: ZoneInfo | None = None) -> dict:
    """`<name>` epoch ms, `<name>_iso` ISO 8601 UTC, and `<name>_local` for people."""
    out = {name: int(round(ts * 1000)), f"{name}_iso": _iso(ts)}
    if tz is not None:
        out[f"{name}_local"] = datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")
    return out


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.3f}".rstrip("0").rstrip(".")


def safety_message(state: str, level: int, prev: int, point: str, quantity: str, value: float,
                   unit: str, threshold: float | None) -> dict[str, str]:
    q = QUANTITIES.get(quantity)
    zh_q, en_q = (q.zh, q.en) if q else (quantity, quantity)
    v = f"{_fmt(value)} {unit}".strip()
    thr = f"{_fmt(threshold)} {unit}".strip() if threshold is not None else ""
    if state == "cleared":
        zh = f"{point} {zh_q} {v}，{LEVEL_ZH[prev]}预警解除"
        en = f"{point} {en_q} {v}: {LEVEL_NAMES[prev]} warning cleared"
    elif state == "downgraded":
        zh = f"{point} {zh_q} {v}，由{LEVEL_ZH[prev]}预警降为{LEVEL_ZH[level]}预警"
        en = f"{point} {en_q} {v}: downgraded from {LEVEL_NAMES[prev]} to {LEVEL_NAMES[level]} warning"
    else:
        verb_zh = "升级为" if state == "escalated" else "达到"
        verb_en = "escalated to" if state == "escalated" else "reached"
        zh = f"{point} {zh_q} {v}，{verb_zh}{LEVEL_ZH[level]}预警" + (f"（阈值 {thr}）" if thr else "")
        en = f"{point} {en_q} {v} {verb_en} {LEVEL_NAMES[level]} warning" + (
            f" (threshold {thr})" if thr else "")
    return {"zh": zh, "en": en}


def fault_message(state: str, point: str, device: str, quality: int, duration_s: float,
                  stage: str = "open", limit_s: float = 7 * 86400) -> dict:
    name, zh_name = QUALITY_NAMES[quality], QUALITY_ZH[quality]
    days, limit = duration_s / 86400, limit_s / 86400
    if state == "escalated" and stage == "repair_overdue":
        return {"zh": f"{point}（设备 {device}）{zh_name}已持续 {days:.1f} 天，超过 {limit:g} 天维修期限",
                "en": f"{point} (device {device}): {name} for {days:.1f} days, past the "
                      f"{limit:g}-day repair limit"}
    if state == "escalated":
        return {"zh": f"{point}（设备 {device}）{zh_name}已持续 {days:.1f} 天，临近 {limit:g} 天维修期限",
                "en": f"{point} (device {device}): {name} for {days:.1f} days, nearing the "
                      f"{limit:g}-day repair limit"}
    if state == "cleared":
        return {"zh": f"{point}（设备 {device}）故障恢复，持续 {duration_s / 3600:.1f} 小时",
                "en": f"{point} (device {device}) fault cleared after {duration_s / 3600:.1f} h"}
    return {"zh": f"{point}（设备 {device}）{zh_name}", "en": f"{point} (device {device}): {name}"}


def commissioning_event(site: str, gateway: str, now: float) -> dict:
    """A commissioning test alert (`minewatch alerts test`): a blue safety event of point TEST
    with `test: true`, which a platform shows and never acts on."""
    import uuid

    return {"schema": EVENT_SCHEMA, "event_id": str(uuid.uuid4()), "alert_id": str(uuid.uuid4()),
            "seq": 0, "kind": "safety", "state": "raised", "level": "blue",
            "grade_roman": "IV", "prev_level": "none", "site": site,
            "gateway": gateway, "device": "", "point": "TEST", "quantity": "generic",
            "unit": "", "detector": "test", "value": None, "threshold": None,
            "criterion": "commissioning test", "evidence": {},
            "message": {"zh": "测试预警，请忽略", "en": "test alert, please ignore"},
            "since": int(now * 1000), **time_fields("observed_at", now),
            **time_fields("sent_at", now), "test": True}


def status_payload(state: str, site: str, gateway: str, ts: float, version: str) -> bytes:
    doc = {"schema": "minewatch/status/1", "state": state, "site": site, "gateway": gateway,
           "version": version, **time_fields("ts", ts)}
    return json.dumps(doc, separators=(",", ":")).encode()


def with_sent_at(payload: bytes, ts: float) -> bytes:
    """Stamp `sent_at` on an event at the moment of each (re)transmission; ids stay the same."""
    doc = json.loads(payload)
    doc.update(time_fields("sent_at", ts))
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Receipt:
    seq: int | None
    event_ids: tuple[str, ...]
    seq_event_id: str | None


_UUID = re.compile(r"[0-9a-f-]{36}")


def parse_receipt(payload: bytes, site: str, gateway: str) -> Receipt:
    """A platform receipt (`config/schema/receipt.schema.json`); ValueError says what is wrong."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != RECEIPT_SCHEMA:
        raise ValueError(f"not a {RECEIPT_SCHEMA} object")
    for key, mine in (("site", site), ("gateway", gateway)):
        if key in doc and doc[key] != mine:
            raise ValueError(f"{key} {doc[key]!r} is not this gateway's ({mine!r})")
    seq = doc.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
        raise ValueError(f"seq must be an integer >= 0, got {seq!r}")
    ids = doc.get("event_ids", [])
    if not isinstance(ids, list) or len(ids) > 1000 or not all(
            isinstance(i, str) and _UUID.fullmatch(i) for i in ids):
        raise ValueError("event_ids must be a list of at most 1000 event ids")
    if seq is None and not ids:
        raise ValueError("neither seq nor event_ids")
    seq_id = doc.get("seq_event_id")
    if seq_id is not None and not (isinstance(seq_id, str) and _UUID.fullmatch(seq_id)):
        raise ValueError(f"seq_event_id {seq_id!r} is not an event id")
    return Receipt(seq, tuple(ids), seq_id)
