"""InfluxDB line protocol for MineWatch's series: readings, alert events and gateway health.

Measurements (tags; numeric fields only, so any InfluxDB-compatible store can take them):
- `reading` (site, gateway, device, point, quantity): `value` (float, absent when the poll
  produced none) and `quality` (integer, docs/contracts.md#quality-codes); a manual reading has
  quality 6 and the extra tag `source=manual`, a series of its own;
- `alert` (site, gateway, point, quantity, kind, detector): `level` 0..4, `state` (1 raised,
  2 escalated, 3 downgraded, 4 cleared, 5 acknowledged, 6 reminder), `seq`, `value`;
- `raw` (the same tags): the measurands as read before conversion, for points with a conversion:
  `value` (the point's own register: a vibrating wire's frequency, a radar's empty height, a
  rain counter) and `aux` (a second register the conversion takes: the piezometer's thermistor);
- `gateway_health` (site, gateway) and `device_health` (site, gateway, device).
Timestamps are epoch milliseconds taken from the sample itself, never from the time of writing: a
sample spooled and written again after an outage lands on the same (series, timestamp), which is
what makes a re-send idempotent in the store.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["escape_tag", "tag_set", "reading_lines", "raw_lines", "alert_line", "health_lines",
           "STATES"]

STATES = {"raised": 1, "escalated": 2, "downgraded": 3, "cleared": 4, "acknowledged": 5,
          "reminder": 6}
LEVELS = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
_TAG_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\\": "\\\\", "\n": " "})


def escape_tag(text: str) -> str:
    """A tag key or value with the characters line protocol gives meaning to escaped."""
    return str(text).translate(_TAG_ESCAPES)


def tag_set(**tags: str) -> str:
    """`,k=v,...` in key order (sorted keys are what InfluxDB stores fastest), empty values left
    out (line protocol has no empty tag value)."""
    return "".join(f",{k}={escape_tag(v)}" for k, v in sorted(tags.items()) if v not in ("", None))


def _float(v: float) -> str:
    return repr(float(v))


def reading_lines(prefixes: list[str], idx: np.ndarray, values: np.ndarray,
                  quality: np.ndarray, t: float) -> list[str]:
    """One `reading` line per point of a batch. `prefixes[i]` is point i's `reading,<tags>`."""
    ms = int(round(t * 1000))
    out = []
    for i, v, q in zip(idx.tolist(), values.tolist(), quality.tolist(), strict=True):
        if math.isfinite(v):
            out.append(f"{prefixes[i]} value={_float(v)},quality={int(q)}i {ms}")
        else:
            out.append(f"{prefixes[i]} quality={int(q)}i {ms}")
    return out


def raw_lines(prefixes: list[str | None], idx: np.ndarray, raw: np.ndarray, aux: np.ndarray,
              t: float) -> list[str]:
    """One `raw` line per point with a prefix (a conversion) and a measurand read."""
    ms = int(round(t * 1000))
    out = []
    for i, v, a in zip(idx.tolist(), raw.tolist(), aux.tolist(), strict=True):
        if prefixes[i] is None or not math.isfinite(v):
            continue
        fields = f"value={_float(v)}" + (f",aux={_float(a)}" if math.isfinite(a) else "")
        out.append(f"{prefixes[i]} {fields} {ms}")
    return out


def alert_line(site: str, gateway: str, event: dict) -> str:
    """The `alert` line of one alert or fault event, at its `observed_at`."""
    tags = tag_set(site=site, gateway=gateway, point=event.get("point", ""),
                   quantity=event.get("quantity", ""), kind=event.get("kind", ""),
                   detector=event.get("detector", ""))
    fields = [f"level={LEVELS.get(event.get('level', 'none'), 0)}i",
              f"state={STATES.get(event.get('state', ''), 0)}i"]
    if event.get("seq") is not None:
        fields.append(f"seq={int(event['seq'])}i")
    value = event.get("value")
    if isinstance(value, int | float) and math.isfinite(value):
        fields.append(f"value={_float(value)}")
    return f"alert{tags} {','.join(fields)} {int(event['observed_at'])}"


def health_lines(site: str, gateway: str, health: dict) -> list[str]:
    """`gateway_health` and one `device_health` line per device from a heartbeat dict."""
    ms = int(health["ts"])
    outbox = health.get("outbox", {})
    fields = {"uptime_s": health.get("uptime_s"), "devices_online": health.get("devices_online"),
              "active_alerts": health.get("active_alerts"),
              "active_faults": health.get("active_faults"),
              "outbox_events": outbox.get("events"), "outbox_telemetry": outbox.get("telemetry"),
              "sink_backlog": health.get("sink_backlog")}
    out = [f"gateway_health{tag_set(site=site, gateway=gateway)} {_fields(fields)} {ms}"]
    for d in health.get("devices", []):
        f = {"online": int(bool(d.get("online"))), "polls": d.get("polls"),
             "missed_deadlines": d.get("missed_deadlines"),
             "consecutive_failures": d.get("consecutive_failures"),
             "online_rate": d.get("online_rate")}
        tags = tag_set(site=site, gateway=gateway, device=d["device"])
        out.append(f"device_health{tags} {_fields(f)} {ms}")
    return out


def _fields(fields: dict) -> str:
    parts = []
    for k, v in fields.items():
        if v is None:
            continue
        if isinstance(v, int):  # bool is an int
            parts.append(f"{k}={int(v)}i")
        elif isinstance(v, float) and math.isfinite(v):
            parts.append(f"{k}={_float(v)}")
    return ",".join(parts) or "present=1i"
