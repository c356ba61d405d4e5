"""The compact telemetry encoding (`minewatch/telemetry/2`, the default) and its zlib form.

Short keys, one message time `ts` (epoch ms), and the values grouped by device, each group with
the time of its device's poll as an offset from `ts` (`t`, ms), so a point costs its name and its
value: `"WL-01":1253.005`. A point whose quality is not good is also listed in its group's `q`
(its value `null` when it has none). Statistics carry per point
`[count, samples, min, max, mean, quality, quantity, unit]`, so every 5 minutes the platform
also learns each point's quantity and unit. `config/schema/telemetry-compact.schema.json`:

    {"schema":"minewatch/telemetry/2","k":"values","site":"TP01","gw":"gw01","ts":1790000000000,
     "d":[{"dev":"radar_wl1","t":-412,"v":{"WL-01":1253.005}},
          {"dev":"vw_p1","t":-130,"v":{"PZ-01":null},"q":{"PZ-01":5}}]}

A point in a maintenance window is listed in `m` (its name), and a `measure` command's values
(`k` "measured") carry the command's id in `cmd`.

With `encoding = "zlib"` the same bytes are zlib-compressed (RFC 1950; `zlib.decompress` reads
them); a platform tells the two apart by the first byte (`{` or 0x78).
"""

from __future__ import annotations

import json
import math
import zlib

from gateway.encodings import Catalog, Report, rounded

__all__ = ["SCHEMA", "CompactEncoder"]

SCHEMA = "minewatch/telemetry/2"


class CompactEncoder:
    def __init__(self, catalog: Catalog, digits: int, compress: bool = False):
        self.catalog = catalog
        self.digits = digits
        self.compress = compress
        self._head = {"schema": SCHEMA, "site": catalog.site, "gw": catalog.gateway}

    def __call__(self, report: Report) -> bytes:
        doc = self._stats(report) if report.kind == "stats" else self._values(report)
        held = report.in_maintenance()
        if held:
            names, points = self.catalog.names, report.points
            doc["m"] = [names[points[k]] for k in held]
        if report.command_id is not None:
            doc["cmd"] = report.command_id
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode()
        return zlib.compress(text, 6) if self.compress else text

    def _values(self, r: Report) -> dict:
        ts = int(round(r.ts * 1000))
        names, devices = self.catalog.names, self.catalog.devices
        values = rounded(r.value, self.digits)
        # None for NaN (JSON has no NaN); tolist gives Python floats, whose repr is the shortest
        vals = [None if v != v else v for v in values.tolist()]
        stamps = r.observed.tolist()
        quality = r.quality.tolist()
        groups: dict[tuple[str, int | None], dict] = {}
        for k, i in enumerate(r.points.tolist()):
            t = stamps[k]
            key = (devices[i], None if t != t else int(round(t * 1000)) - ts)
            g = groups.get(key)
            if g is None:
                g = groups[key] = {"dev": key[0], "t": key[1], "v": {}}
            g["v"][names[i]] = vals[k]
            if quality[k]:
                g.setdefault("q", {})[names[i]] = quality[k]
        return {**self._head, "k": r.kind, "ts": ts, "d": list(groups.values())}

    def _stats(self, r: Report) -> dict:
        c = self.catalog
        d = self.digits
        lo, hi, mean = (rounded(a, d).tolist() for a in (r.vmin, r.vmax, r.mean))
        groups: dict[str, dict] = {}
        for k, i in enumerate(r.points.tolist()):
            n = int(r.count[k])
            groups.setdefault(c.devices[i], {})[c.names[i]] = [
                n, int(r.samples[k]), _num(lo[k]) if n else None, _num(hi[k]) if n else None,
                _num(mean[k]) if n else None, int(r.quality[k]), c.quantities[i], c.units[i]]
        return {**self._head, "k": "stats", "ws": int(round(r.window_start * 1000)),
                "we": int(round(r.ts * 1000)), "d": groups}


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None

