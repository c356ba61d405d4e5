"""One telemetry payload in another encoding: for a northbound target whose `encoding` is not the
one the outbox holds (the first target's, `gateway/telemetry.py` encodes once at commit).

The payload is read back (`decode.py`) into a `Report` over the site's points and written again
with the target's encoder, so each platform gets its own format from one outbox row. What the
outbox's encoding rounded stays rounded (`digits`); a message that is not MineWatch telemetry of
a transcodable kind (a manual reading, always the full JSON) goes as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.encodings import Catalog, Report
from gateway.encodings.decode import decode

__all__ = ["Transcoder"]

_NAN = float("nan")


class Transcoder:
    """`Transcoder(catalog, encode)(payload)`: `payload` (any encoding) as `encode` writes it."""

    def __init__(self, catalog: Catalog, encode: Callable[[Report], bytes]):
        self.encode = encode
        self.index = {name: i for i, name in enumerate(catalog.names)}

    def __call__(self, payload: bytes) -> bytes:
        try:
            doc = decode(payload)
        except (ValueError, KeyError):
            return payload
        kind = doc.get("kind")
        rows = [p for p in doc.get("points", ()) if p.get("point") in self.index]
        if kind not in ("values", "realtime", "measured", "stats") or not rows:
            return payload
        idx = np.array([self.index[p["point"]] for p in rows], np.int64)
        quality = np.array([p.get("quality", 0) for p in rows], np.uint8)
        held = np.array([bool(p.get("maintenance")) for p in rows])
        maintenance = held if held.any() else None
        if kind == "stats":
            def column(key: str) -> np.ndarray:
                return np.array([_NAN if p.get(key) is None else p[key] for p in rows])

            report = Report("stats", doc["window_end"] / 1000, idx, quality,
                            window_start=doc["window_start"] / 1000,
                            count=np.array([p["count"] for p in rows], np.int64),
                            samples=np.array([p["samples"] for p in rows], np.int64),
                            vmin=column("min"), vmax=column("max"), mean=column("mean"),
                            maintenance=maintenance)
        else:
            value = np.array([_NAN if p.get("value") is None else p["value"] for p in rows])
            observed = np.array([_NAN if p.get("observed_at") is None
                                 else p["observed_at"] / 1000 for p in rows])
            report = Report(kind, doc["ts"] / 1000, idx, quality, value=value,
                            observed=observed, maintenance=maintenance,
                            command_id=doc.get("command_id"))
        return self.encode(report)
