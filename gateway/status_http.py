"""The gateway's local HTTP endpoint: Prometheus `/metrics` and the `/status` that
`minewatch status` reads.

Figures are read from the running pipeline at scrape time (a custom collector), so nothing is
counted twice and the hot path does no metric bookkeeping beyond its own counters. It serves from
a thread; the outbox's figures come from `Outbox.stats()`, which reads with its own connection
(a connection is not shared across threads). A port that is taken is logged and the gateway runs on without the endpoint:
monitoring must never stop the monitoring.

The endpoint listens on loopback unless the config says `listen_public = true`; with
`status_token_file` every request must carry `Authorization: Bearer <token>` (401 otherwise).
The token is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.daemon import Gateway

__all__ = ["StatusServer", "read_token", "status_url"]

log = logging.getLogger("minewatch.http")


class _Collector:
    def __init__(self, gw: Gateway, lock: threading.Lock):
        self.gw = gw
        self.lock = lock

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        gw = self.gw
        polls = CounterMetricFamily("minewatch_polls", "Polls of a device", labels=["device"])
        reqs = CounterMetricFamily("minewatch_requests", "Modbus requests sent",
                                   labels=["device"])
        errors = CounterMetricFamily(
            "minewatch_poll_errors", "Failed requests by kind (timeout, truncated, malformed, "
            "connection_lost, connect, exception_N; device_flag: flagged polls)",
            labels=["device", "kind"])
        missed = CounterMetricFamily("minewatch_missed_deadlines",
                                     "Polls that started after their next due time",
                                     labels=["device"])
        latency = GaugeMetricFamily("minewatch_reply_latency_seconds",
                                    "Modbus reply latency", labels=["device", "stat"])
        online = GaugeMetricFamily("minewatch_device_online", "1 if the device answers",
                                   labels=["device"])
        now = gw.clock.now()
        health = {d["device"]: d for d in gw.health_devices(now)}
        for name, poller in list(gw.pollers.items()):
            st = poller.stats
            polls.add_metric([name], st.polls)
            reqs.add_metric([name], st.requests)
            for kind, n in st.errors.items():
                errors.add_metric([name, kind], n)
            missed.add_metric([name], st.missed_deadlines)
            latency.add_metric([name, "avg"], st.latency_sum / max(1, st.requests))
            latency.add_metric([name, "max"], st.latency_max)
            online.add_metric([name], 1.0 if health.get(name, {}).get("online") else 0.0)
        yield from (polls, reqs, errors, missed, latency, online)
        yield CounterMetricFamily("minewatch_batches", "Batches through the pipeline",
                                  value=gw.batches)
        yield CounterMetricFamily("minewatch_detector_seconds", "Time spent in detectors",
                                  value=gw.detector_seconds)
        alerts = CounterMetricFamily("minewatch_alert_events", "Alert and fault events committed",
                                     labels=["kind", "state", "level"])
        for (kind, state, level), n in list(gw.event_counts.items()):
            alerts.add_metric([kind, state, level], n)
        yield alerts
        active = gw.engine.active()
        yield GaugeMetricFamily("minewatch_active_alerts", "Open safety alerts",
                                value=sum(a["kind"] == "safety" for a in active))
        yield GaugeMetricFamily("minewatch_active_faults", "Open device faults",
                                value=sum(a["kind"] == "fault" for a in active))
        depth = GaugeMetricFamily("minewatch_outbox_depth", "Messages waiting in the outbox",
                                  labels=["kind"])
        with self.lock:
            st = gw.outbox.stats()
        oldest = st.get("oldest_event")
        depth.add_metric(["events"], st.get("events", 0))
        depth.add_metric(["telemetry"], st.get("telemetry", 0))
        yield depth
        yield GaugeMetricFamily("minewatch_outbox_oldest_event_age_seconds",
                                "Age of the oldest undelivered alert or fault event",
                                value=time.time() - oldest if oldest else 0.0)
        yield from storage_metrics(gw, st)
        yield from uplink_metrics(gw, st)
        yield from command_metrics(gw)
        yield CounterMetricFamily("minewatch_telemetry_dropped",
                                  "Telemetry dropped at the outbox cap",
                                  value=gw.outbox.dropped_telemetry)
        sink = getattr(gw, "sink", None)
        if sink is not None:
            yield GaugeMetricFamily("minewatch_sink_backlog", "Lines waiting for the database",
                                    value=sink.backlog())
            yield CounterMetricFamily("minewatch_sink_written_lines",
                                      "Lines the database accepted", value=sink.stats.written_lines)
            yield CounterMetricFamily("minewatch_sink_dropped_lines",
                                      "Lines dropped at the spool cap (oldest readings first)",
                                      value=sink.spool.dropped)
            errors = CounterMetricFamily("minewatch_sink_write_errors",
                                         "Failed database writes by reason", labels=["kind"])
            for kind, n in sorted(sink.stats.write_errors.items()):
                errors.add_metric([kind], n)
            yield errors


def read_token(cfg_gateway) -> str | None:
    """The bearer token of `[gateway] status_token_file` (None when there is none);
    gateway.text_files.TextFileError when the file cannot be used."""
    from gateway.text_files import read_secret

    path = cfg_gateway.status_token_file
    return read_secret(path) if path is not None else None


def status_url(cfg_gateway, path: str = "/status") -> str:
    """Where `minewatch status` finds the daemon: an all-interfaces listen is asked on loopback."""
    host, port = cfg_gateway.listen
    if host in ("0.0.0.0", "", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}{path}"


class StatusServer:
    def __init__(self, gw: Gateway, host: str, port: int):
        from prometheus_client import CollectorRegistry, generate_latest

        self.gw = gw
        token = read_token(gw.cfg.gateway)
        expected = f"Bearer {token}".encode() if token else None
        self.lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(gw, self.lock))
        registry, outer = self.registry, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if expected is not None and not hmac.compare_digest(
                        self.headers.get("Authorization", "").encode(), expected):
                    body = b"a bearer token is required (Authorization: Bearer <token>)\n"
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="minewatch"')
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path.split("?")[0] == "/metrics":
                    body, ctype = generate_latest(registry), "text/plain; version=0.0.4"
                elif self.path.split("?")[0] == "/status":
                    body = json.dumps(outer.status(), ensure_ascii=False).encode()
                    ctype = "application/json"
                else:
                    self.send_error(404, "try /metrics or /status")
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                return  # scrapes every few seconds would drown the journal

        host = host.strip("[]")
        server = ThreadingHTTPServer
        if ":" in host:  # an IPv6 address ("[::1]:9108")
            server = type("ThreadingHTTPServer6", (ThreadingHTTPServer,),
                          {"address_family": socket.AF_INET6})
        self.httpd = server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="status-http",
                                       daemon=True)

    def status(self) -> dict:
        gw = self.gw
        now = gw.clock.now()
        with self.lock:
            return gw.status_document(now, outbox_depth=gw.outbox.stats())

    def start(self) -> None:
        self.thread.start()
        token = "with a bearer token" if self.gw.cfg.gateway.status_token_file else "no token"
        log.info("status endpoint on http://%s:%d (/metrics, /status), %s", *self.address[:2],
                 token, extra={"event": "http_listening"})

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def uplink_metrics(gw: Gateway, outbox: dict):
    """Each northbound target: connected, what waits for it, what is in flight."""
    from prometheus_client.core import GaugeMetricFamily

    uplinks = getattr(gw, "publisher", None)
    if uplinks is None or not hasattr(uplinks, "health"):
        return
    up = GaugeMetricFamily("minewatch_uplink_connected", "1 while the target's broker is "
                           "connected", labels=["target"])
    backlog = GaugeMetricFamily("minewatch_uplink_backlog", "Messages the target's broker has "
                                "not accepted yet", labels=["target", "kind"])
    flying = GaugeMetricFamily("minewatch_uplink_in_flight", "Messages published to the target "
                               "and waiting for their PUBACK", labels=["target"])
    for t in uplinks.health(outbox.get("targets")):
        up.add_metric([t["name"]], 1.0 if t["connected"] else 0.0)
        backlog.add_metric([t["name"], "events"], t["events"])
        backlog.add_metric([t["name"], "telemetry"], t["telemetry"])
        flying.add_metric([t["name"]], t["in_flight"])
    yield from (up, backlog, flying)


def storage_metrics(gw: Gateway, outbox: dict):
    """The state directory's health and the end-to-end receipts (issue 21)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    storage = gw.storage_health()
    state = GaugeMetricFamily("minewatch_storage_state", "1 for the state directory's state "
                              "(ok, full, read_only, error)", labels=["path", "state"])
    for name in ("ok", "full", "read_only", "error"):
        state.add_metric([storage["path"], name], 1.0 if storage["state"] == name else 0.0)
    yield state
    yield GaugeMetricFamily("minewatch_storage_free_bytes", "Free bytes in the state directory",
                            value=storage["free_bytes"] or 0)
    yield GaugeMetricFamily("minewatch_storage_reserve_released",
                            "1 while the outbox's reserve is given to alerts",
                            value=1.0 if storage["reserve_released"] else 0.0)
    held = GaugeMetricFamily("minewatch_storage_held", "Messages held in memory because the "
                             "disk refused them", labels=["kind"])
    held.add_metric(["events"], storage["held_events"])
    held.add_metric(["telemetry"], storage["held_telemetry"])
    held.add_metric(["spool_lines"], storage["spool_in_memory"])
    yield held
    yield CounterMetricFamily("minewatch_storage_dropped_events", "Held events dropped at the "
                              "memory bound (never in the alert log)",
                              value=storage["dropped_events"])
    yield CounterMetricFamily("minewatch_storage_write_failures", "Writes the disk refused",
                              value=storage["failures"])
    if gw.outbox.receipts:
        oldest = outbox.get("oldest_unconfirmed")
        yield GaugeMetricFamily("minewatch_outbox_unconfirmed", "Events the broker acknowledged "
                                "and the platform has not confirmed yet",
                                value=outbox.get("unconfirmed", 0))
        yield GaugeMetricFamily("minewatch_outbox_oldest_unconfirmed_age_seconds",
                                "Age of the oldest event waiting for the platform's receipt",
                                value=time.time() - oldest if oldest else 0.0)


def command_metrics(gw: Gateway):
    """The platform's commands: taken by command, refused by reason; points in maintenance."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    yield GaugeMetricFamily("minewatch_maintenance_windows", "Maintenance windows in force",
                            value=len(gw.maintenance.active(gw.clock.now())))
    service = getattr(gw, "commands", None)
    if service is None:
        return
    taken = CounterMetricFamily("minewatch_commands", "Commands taken and run", labels=["command"])
    for name, n in sorted(service.taken.items()):
        taken.add_metric([name], n)
    yield taken
    refused = CounterMetricFamily("minewatch_commands_refused", "Commands refused, by reason",
                                  labels=["reason"])
    for reason, n in sorted(service.refused.items()):
        refused.add_metric([reason], n)
    yield refused
