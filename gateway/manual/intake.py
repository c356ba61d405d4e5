"""The daemon's side of manual readings: validate, grade, compare, publish, store.

Two ways in, one path: `Gateway.add_reading(...)` (the platform's `reading` command calls it
inside the daemon and answers with its result) and the readings `minewatch reading add` left
pending in the history store, taken once a second by `tick`. Each reading

1. is checked against the running config (`validate.py`; a reading of a point removed since it
   was entered is rejected, with the reason stored);
2. is graded by the point's threshold detector (`grade.py`) and compared with the nearest
   automatic value when the point sets `manual_tolerance`;
3. gives its events (a manual safety episode at blue or above, a comparison fault; committed to
   the outbox with their seq, `gateway/alerts/manual.py`);
4. is published as telemetry of kind `manual` (quality 6) through the outbox at event priority,
   never dropped, and written to InfluxDB when a sink is configured;
5. is stored with its result in the history store, where the monthly report finds it.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from gateway.alerts.encoder import LEVEL_NAMES, ROMAN, time_fields, topic
from gateway.history.readings import Reading, finish_reading, insert_reading, pending_readings
from gateway.manual.grade import COMPARE_WINDOW_S, compare, grade_reading, nearest_automatic
from gateway.manual.validate import ReadingError, check_reading, point_range

__all__ = ["ManualIntake", "ReadingError"]

log = logging.getLogger("minewatch.manual")


class ManualIntake:
    """Holds no state of its own but the messages the disk refused; reads the gateway's config,
    engine, outbox, telemetry, history store and sink (`gw`)."""

    def __init__(self, gw: Any):
        self.gw = gw
        self._params = None
        self._params_of = None
        self._unsent: list[tuple[str, bytes]] = []

    def add(self, point: str, value: object, at: float | None, by: str, note: str | None,
            source: str = "mqtt") -> dict:
        """Validate and process one reading now; its result, or ReadingError (say `.text(lang)`)."""
        gw = self.gw
        now = gw.clock.now()
        reading = check_reading(gw.cfg, point, value, now if at is None else at, by, note, now,
                                source, oldest=gw.history.oldest_kept(now))
        gw.history.store.later(lambda db: insert_reading(db, reading))
        return self.process(reading)

    def tick(self) -> None:
        """Readings the CLI left pending, and published messages the disk refused before."""
        self._unsent = [m for m in self._unsent if not self.gw.outbox.add_record(*m)]
        store = self.gw.history.store
        try:
            pending = pending_readings(store.db)
        except Exception as exc:  # noqa: BLE001 - a locked or damaged file: try again next tick
            log.warning("manual readings not read: %s", exc, extra={"event": "manual_read_failed"})
            return
        for reading in pending:
            try:
                self.process(reading)
            except ReadingError as exc:
                log.warning("manual reading %s of %s rejected: %s", reading.reading_id,
                            reading.point, exc.en, extra={"event": "manual_rejected",
                                                          "point": reading.point})
                store.later(finish_reading(reading.reading_id, "rejected",
                                           {"error": {"key": exc.key, "zh": exc.zh,
                                                      "en": exc.en}}, self.gw.clock.now()))
            except Exception:  # a bug must not stop the gateway, nor retry forever
                log.exception("manual reading %s of %s not processed", reading.reading_id,
                              reading.point, extra={"event": "manual_failed"})
                store.later(finish_reading(reading.reading_id, "rejected",
                                           {"error": {"key": "internal", "zh": "网关内部错误",
                                                      "en": "internal error, see the log"}},
                                           self.gw.clock.now()))

    def process(self, r: Reading) -> dict:
        gw = self.gw
        cfg = gw.cfg
        p = next((q for q in cfg.points if q.name == r.point), None)
        if p is None:
            raise ReadingError("point", f"测点 {r.point} 已不在当前配置中",
                               f"point {r.point!r} is no longer in the running config")
        lo, hi = point_range(cfg, p)
        if not lo <= r.value <= hi:
            raise ReadingError("value", f"{r.value:g} 超出 {p.name} 的量程 [{lo:g}, {hi:g}]",
                               f"{r.value:g} is outside {p.name}'s range [{lo:g}, {hi:g}]")
        i = p.index
        grade = grade_reading(cfg, i, r.value, r.at, self._threshold_params())
        window = max(COMPARE_WINDOW_S, cfg.device(p.device).period if p.device else 0.0)
        auto = nearest_automatic(r.at, self._windows(p, r.at, window), self._last(i), window)
        comparison = compare(r.value, auto, p.manual_tolerance)
        block = r.block()
        events = gw.engine.process_manual(r.at, i, r.value, grade.level, grade.threshold,
                                          grade.evidence, block, comparison)
        for ev in events:
            gw.event_counts[(ev["kind"], ev["state"], ev["level"])] += 1
        result = {
            "reading_id": r.reading_id, "point": p.name, "quantity": p.quantity, "unit": p.unit,
            "value": r.value, **time_fields("at", r.at, gw.engine.tz), "by": r.by,
            "note": r.note, "source": r.source, "quality": 6,
            "level": LEVEL_NAMES[grade.level], "grade_roman": ROMAN[grade.level],
            "threshold": grade.threshold, "out_of_range": grade.out_of_range,
            "comparison": comparison,
            "events": [{"seq": e["seq"], "event_id": e["event_id"], "alert_id": e["alert_id"],
                        "kind": e["kind"], "state": e["state"], "level": e["level"]}
                       for e in events]}
        message = self._message(p, r, result)
        if not gw.outbox.add_record(*message):
            self._unsent.append(message)
        if gw.sink is not None:
            gw.sink.add_manual(i, r.at, r.value)
            if events:
                gw.sink.add_events(events)
        gw.history.store.later(finish_reading(r.reading_id, "done", result, gw.clock.now()))
        if gw.publisher is not None:
            gw.publisher.notify()
        log.info("manual reading of %s by %s: %s %s, %s", p.name, r.by, r.value, p.unit,
                 result["level"], extra={"event": "manual_reading", "point": p.name,
                                         "alert_level": result["level"],
                                         "agrees": comparison and comparison["agrees"]})
        return result

    def _threshold_params(self):
        if self._params_of is not self.gw.cfg:  # built once per config (a reload changes it)
            from gateway.detect import threshold_params

            self._params, self._params_of = threshold_params(self.gw.cfg), self.gw.cfg
        return self._params

    def _windows(self, p, at: float, window: float) -> list[tuple[float, int, float]]:
        """5-minute windows of the point near `at`: stored, waiting for the disk, and open."""
        gw = self.gw
        lo, hi = at - window - 300.0, at + window
        store = gw.history.store
        sid = store._series.get(p.name)
        out: list[tuple[float, int, float]] = []
        if sid is not None:
            try:
                out += store.db.execute("SELECT start, count, sum FROM stats WHERE series=? AND "
                                        "start BETWEEN ? AND ?", (sid, lo, hi)).fetchall()
            except Exception as exc:  # noqa: BLE001 - unreadable now: compare with what is left
                log.warning("history not read for a comparison: %s", exc,
                            extra={"event": "manual_read_failed"})
            out += [(row[1], row[2], row[6] or 0.0) for row in store._rows
                    if row[0] == sid and lo <= row[1] <= hi]
        tel = gw.telemetry
        if tel.window_start is not None and lo <= tel.window_start <= hi:
            out.append((tel.window_start, int(tel.count[p.index]), float(tel.sum[p.index])))
        return out

    def _last(self, i: int) -> tuple[float, float] | None:
        tel = self.gw.telemetry
        t, v = float(tel.last_t[i]), float(tel.last[i])
        if tel.last_quality[i] != 0 or not math.isfinite(v) or not math.isfinite(t):
            return None
        return t, v

    def _message(self, p, r: Reading, result: dict) -> tuple[str, bytes]:
        gw = self.gw
        doc = {"schema": "minewatch/telemetry/1", "kind": "manual", "site": gw.cfg.site.code,
               "gateway": gw.cfg.gateway.id, **time_fields("ts", r.at),
               "points": [{"point": p.name, "quantity": p.quantity, "unit": p.unit,
                           "value": r.value, "quality": 6,
                           "observed_at": int(round(r.at * 1000))}],
               "reading": r.block(),
               "grade": {"level": result["level"], "grade_roman": result["grade_roman"],
                         "threshold": result["threshold"]},
               "comparison": result["comparison"]}
        return (topic(gw.prefix, gw.cfg.site.code, gw.cfg.gateway.id, "telemetry"),
                json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())
