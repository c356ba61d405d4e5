"""Telemetry on the wire: what a telemetry message says (`Report`), the site's points it speaks of
(`Catalog`), and the encoder each uplink's `encoding` names (docs/contracts.md#telemetry).

`gateway/telemetry.py` decides what to send and when; an encoder only turns a `Report` into the
payload bytes, one module per encoding:

| encoding | module | payload |
|---|---|---|
| `compact` (default) | `compact.py` | JSON `minewatch/telemetry/2`: short keys, values grouped by device with one time per device poll, `config/schema/telemetry-compact.schema.json` |
| `zlib` | `compact.py` | the same JSON, zlib-compressed (RFC 1950) |
| `protobuf` | `sparkplug.py` | a Sparkplug B `Payload` (Eclipse Tahu's `sparkplug_b.proto`) |
| `sparkplug` | `sparkplug.py` | in the outbox as `protobuf`; on its target a Sparkplug B edge node's DDATA (`gateway/uplink/sparkplug.py`) |
| `json` | `full_json.py` | JSON `minewatch/telemetry/1`, one object per point (`telemetry.schema.json`), as before issue 18 |

`decode.py` reads every one of them back into the `minewatch/telemetry/1` shape (what a platform
or a test does). The compact encodings carry each value rounded to `digits` significant digits
(default 7, a float32 register's precision; the extra digits of a float32 widened to float64 are
noise): the same numbers in all three, so they decode alike. `json` carries full float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ENCODINGS", "DEFAULT_DIGITS", "Catalog", "Report", "encoder", "rounded"]

ENCODINGS = ("compact", "zlib", "protobuf", "json", "sparkplug")
DEFAULT_DIGITS = 7


@dataclass(frozen=True)
class Catalog:
    """The site's points as the wire names them, by point index."""

    site: str
    gateway: str
    names: tuple[str, ...]
    devices: tuple[str, ...]  # "" for a formula point
    quantities: tuple[str, ...]
    units: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """One telemetry message before encoding. `kind` "values" (report by exception),
    "realtime" (gas points every 20 s) or "measured" (a `measure` command's values, with its
    `command_id`): `ts` the message time, per point its `value` (NaN: none),
    `quality` and `observed` (epoch s of its read, NaN: never read). "stats" (an aligned window):
    `ts` the window's end, `window_start`, and per point `count` (good samples), `samples`,
    `vmin`, `vmax`, `mean` (NaN without a good sample) and the last `quality`. Every kind: per
    point whether it is in a maintenance window (`maintenance`, None: no window at all)."""

    kind: str
    ts: float
    points: np.ndarray  # int64 point indices
    quality: np.ndarray  # uint8
    value: np.ndarray | None = None  # float64
    observed: np.ndarray | None = None  # float64 epoch s
    window_start: float | None = None
    count: np.ndarray | None = None
    samples: np.ndarray | None = None
    vmin: np.ndarray | None = None
    vmax: np.ndarray | None = None
    mean: np.ndarray | None = None
    maintenance: np.ndarray | None = None  # bool per point
    command_id: str | None = None

    def in_maintenance(self) -> list[int]:
        """Positions (in `points`) of the points in a maintenance window."""
        if self.maintenance is None:
            return []
        return np.flatnonzero(self.maintenance).tolist()


def rounded(values: np.ndarray, digits: int) -> np.ndarray:
    """`values` to `digits` significant digits, each the float64 nearest its decimal (so its
    shortest repr is that decimal); NaN, infinities, zeros and values below 1e-280 stay as they are.

    >>> rounded(np.array([1253.0050048828125, 0.10000000149011612, -2.5e-7, 123456789.0]), 7)
    array([ 1.253005e+03,  1.000000e-01, -2.500000e-07,  1.234568e+08])
    """
    v = np.asarray(values, dtype=np.float64)
    out = v.copy()
    if digits >= 17:  # 17 significant digits name every float64 exactly
        return out
    ok = np.isfinite(v) & (np.abs(v) >= 1e-280)  # zeros and denormals stay as they are
    if not ok.any():
        return out
    x = v[ok]
    shift = (digits - 1) - np.floor(np.log10(np.abs(x))).astype(np.int64)
    up = shift >= 0
    # multiply and divide by an exact power of ten (10**k is exact up to k = 22), never by its
    # inexact inverse
    k = np.clip(np.abs(shift), 0, 300).astype(np.float64)
    p = 10.0 ** k
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.where(up, np.round(x * p) / p, np.round(x / p) * p)
    out[ok] = np.where(np.isfinite(r), r, x)
    return out


def encoder(name: str, catalog: Catalog, digits: int = DEFAULT_DIGITS
            ) -> Callable[[Report], bytes]:
    """The encoder of `name` (one of ENCODINGS) for the site of `catalog`. The protobuf encoder
    imports google.protobuf, which only a site that asks for it needs."""
    if name in ("compact", "zlib"):
        from gateway.encodings.compact import CompactEncoder

        return CompactEncoder(catalog, digits, compress=name == "zlib")
    if name in ("protobuf", "sparkplug"):  # a Sparkplug target stores standalone payloads
        from gateway.encodings.sparkplug import SparkplugEncoder

        return SparkplugEncoder(catalog, digits)
    if name == "json":
        from gateway.encodings.full_json import FullJsonEncoder

        return FullJsonEncoder(catalog)
    raise ValueError(f"unknown telemetry encoding {name!r}; one of {', '.join(ENCODINGS)}")
