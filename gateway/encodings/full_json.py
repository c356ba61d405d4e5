"""The full JSON telemetry encoding (`encoding = "json"`, `minewatch/telemetry/1`): one object per
point with its quantity, unit, quality and read time, full float64 values
(`config/schema/telemetry.schema.json`). The format before issue 18, for a platform that reads it;
about 115 bytes per value where `compact` needs under 20."""

from __future__ import annotations

import json
import math

from gateway.alerts.encoder import time_fields
from gateway.encodings import Catalog, Report

__all__ = ["SCHEMA", "FullJsonEncoder"]

SCHEMA = "minewatch/telemetry/1"


class FullJsonEncoder:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def __call__(self, r: Report) -> bytes:
        c = self.catalog
        doc = {"schema": SCHEMA, "kind": r.kind, "site": c.site, "gateway": c.gateway}
        points = []
        held = set(r.in_maintenance())
        if r.kind == "stats":
            for k, i in enumerate(r.points.tolist()):
                n = int(r.count[k])
                points.append({
                    "point": c.names[i], "quantity": c.quantities[i], "unit": c.units[i],
                    "count": n, "samples": int(r.samples[k]),
                    "min": float(r.vmin[k]) if n else None,
                    "max": float(r.vmax[k]) if n else None,
                    "mean": float(r.mean[k]) if n else None,
                    "quality": int(r.quality[k]),
                    **({"maintenance": True} if k in held else {})})
            doc.update(time_fields("window_start", r.window_start))
            doc.update(time_fields("window_end", r.ts))
        else:
            for k, i in enumerate(r.points.tolist()):
                v, t = float(r.value[k]), float(r.observed[k])
                points.append({"point": c.names[i], "quantity": c.quantities[i],
                               "unit": c.units[i], "value": v if math.isfinite(v) else None,
                               "quality": int(r.quality[k]),
                               "observed_at": int(round(t * 1000)) if math.isfinite(t) else None,
                               **({"maintenance": True} if k in held else {})})
            doc.update(time_fields("ts", r.ts))
            if r.command_id is not None:
                doc["command_id"] = r.command_id
        doc["points"] = points
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
