"""The gateway's health, as the heartbeat on the `health` topic (docs/requirements.md R9), `/status`
and `/metrics` report it: per device its online state, online rate, polls, missed deadlines and
errors; the outbox's backlog (and, with receipts, what the platform has not confirmed), overall
and per northbound target with its connection; the state directory's condition and what waits
in memory because the disk refused it; the database sink's backlog; the active alerts and faults; the maintenance windows in force; the
config's version (and a pushed config's probation); the platform's commands taken and refused;
the wall clock's steps, once there were any.
`status_document` is what `/status` serves and the `status` command answers with."""

from __future__ import annotations

import time

from gateway.alerts.encoder import time_fields

__all__ = ["GatewayHealth"]


class GatewayHealth:
    """Mixed into `gateway.daemon.Gateway`: reads its config, pollers, alert engine, outbox,
    storage watch and sink, and changes nothing."""

    def health(self, now: float, outbox_depth: dict | None = None) -> dict:
        """Gateway and per-device health (R9): online state, online rate, backlog, alerts."""
        devices = self.health_devices(now)
        if outbox_depth is None:  # the loop's own connection
            depth = self.outbox.depth()
            unconfirmed, oldest = self.outbox.unconfirmed()
        else:  # the status endpoint's thread: Outbox.stats()
            depth = outbox_depth
            unconfirmed, oldest = depth.get("unconfirmed", 0), depth.get("oldest_unconfirmed")
        receipts = {"unconfirmed": unconfirmed,
                    "oldest_unconfirmed_s": round(time.time() - oldest, 1) if oldest else None
                    } if self.outbox.receipts else {}
        active = self.engine.active()
        return {"schema": "minewatch/health/1", "site": self.cfg.site.code,
                "gateway": self.cfg.gateway.id, **time_fields("ts", now),
                "uptime_s": round(now - self.started, 1),
                "devices_online": sum(d["online"] for d in devices), "devices": devices,
                "outbox": {"events": depth.get("events", 0),
                           "telemetry": depth.get("telemetry", 0),
                           "dropped_telemetry": self.outbox.dropped_telemetry, **receipts},
                "storage": self.storage_health(),
                "active_alerts": sum(a["kind"] == "safety" for a in active),
                "active_faults": sum(a["kind"] == "fault" for a in active),
                "maintenance": self.maintenance.active(now),
                "config": self.config_health(),
                **({"uplinks": self.publisher.health(depth.get("targets"))}
                   if self.publisher is not None else {}),
                **({"commands": self.commands.health()} if self.commands is not None else {}),
                **({"sink": self.sink_health()} if self.sink is not None else {}),
                **({"history": self.history.store.health()}
                   if getattr(self, "history", None) is not None else {}),
                **self.clock_health()}

    def clock_health(self) -> dict:
        """Once the wall clock has been stepped under the running gateway: how often and by how
        much in all, so the platform knows why an `observed_at` may run back (seq is the order;
        docs/contracts.md#a-step-of-the-wall-clock). Nothing while it never stepped."""
        if not self.clock.jumps:
            return {}
        return {"clock": {"steps": int(self.clock.jumps),
                          "stepped_s": round(float(self.clock.stepped), 3)}}

    def status_document(self, now: float, outbox_depth: dict | None = None) -> dict:
        """The health document with the version, the config file and every open alert (with
        who acknowledged it): what `/status` and the `status` command answer."""
        doc = self.health(now, outbox_depth)
        doc["version"] = self.version
        doc["config_file"] = str(self.cfg.path)
        alerts = self.engine.active()
        for a in alerts:
            ack = self.acks.status(a.get("alert_id"))
            if ack is not None:
                a["acknowledged"] = ack
        doc["alerts"] = alerts
        return doc

    def config_health(self) -> dict:
        """The running config's version, and a pushed config's trial or its last rollback."""
        out: dict = {"version": self.cfg.version}
        if self.probation is not None:
            out["probation"] = {"by": self.probation.by, "previous": self.probation.previous}
        if self.last_rollback is not None:
            out["rolled_back"] = dict(self.last_rollback)
        return out

    def storage_health(self) -> dict:
        """The state directory: path, state (ok, full, read_only, error), free bytes, the
        reserve, and what waits in memory because the disk refused it."""
        held = self.outbox.hold.counts()
        return {**self.storage.as_dict(), "held_events": held["held_events"],
                "held_unsent": held["held_unsent"], "held_telemetry": held["held_telemetry"],
                "held_bytes": held["held_bytes"], "hold_max_bytes": held["hold_max_bytes"],
                "dropped_events": held["dropped_events"],
                "dropped_undelivered": held["dropped_undelivered"],
                "spool_in_memory": self.sink.spool.in_memory() if self.sink is not None else 0}

    def sink_health(self) -> dict:
        st = self.sink.stats
        return {"backlog": self.sink.backlog(), "written": st.written_lines,
                "dropped": self.sink.spool.dropped, "refused": st.rejected_lines,
                "last_error": st.last_error}

    def health_devices(self, now: float) -> list[dict]:
        devices = []
        for name, poller in list(self.pollers.items()):
            st = poller.stats
            period = self.period_of(poller.device)
            online = st.last_good is not None and st.consecutive_failures == 0 \
                and now - st.last_good <= 3 * period
            devices.append({"device": name, "online": bool(online),
                            "online_rate": round(1 - min(st.polls, st.failed_polls) / st.polls, 4)
                            if st.polls else None,
                            "polls": st.polls, "missed_deadlines": st.missed_deadlines,
                            "errors": dict(st.errors),
                            "consecutive_failures": st.consecutive_failures,
                            "degraded": st.degraded,
                            "last_good": int(st.last_good * 1000) if st.last_good else None})
        return devices
