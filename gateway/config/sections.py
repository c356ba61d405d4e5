"""The sections of a site config around the field: `[site]`, `[gateway]` (its id, state folder
and the status endpoint, kept on loopback unless a bearer token guards it), `[uplink.mqtt]`,
`[storage.influx]`, `[outbox]` and `[alerts]`."""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from pathlib import Path

from gateway.config.model import (
    AlertPolicy,
    GatewayIdentity,
    InfluxStorage,
    MqttUplink,
    Outbox,
    Site,
)
from gateway.config.reader import Reader

__all__ = ["SITE_KINDS", "build_alerts", "build_gateway", "build_outbox", "build_site",
           "build_storage", "build_uplink", "is_loopback"]

SITE_KINDS = ("tailings_pond", "underground_mine", "open_pit", "chemical_plant", "metallurgy")


def build_site(doc: dict, r: Reader) -> Site:
    s = r.table(doc, "site", "site", required=True)
    r.known(s, {"code", "name", "kind", "timezone"}, "site")
    kind = r.get(s, "kind", "site", str, "tailings_pond")
    if kind not in SITE_KINDS:
        r.problem("site.kind", f"unknown site kind {kind!r}", f"one of {', '.join(SITE_KINDS)}")
    tz = r.get(s, "timezone", "site", str, "Asia/Shanghai")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        r.problem("site.timezone", f"unknown time zone {tz!r}", "an IANA name such as Asia/Shanghai")
    return Site(
        code=r.get(s, "code", "site", str, "", required=True),
        name=r.get(s, "name", "site", str, ""),
        kind=kind,
        timezone=tz,
    )


def build_gateway(doc: dict, r: Reader, base_dir: Path, site: Site) -> GatewayIdentity:
    g = r.table(doc, "gateway", "gateway", required=True)
    r.known(g, {"id", "state_dir", "listen", "listen_public", "status_token_file"}, "gateway")
    gw_id = r.get(g, "id", "gateway", str, "", required=True)
    if gw_id and not re.fullmatch(r"[A-Za-z0-9_.-]+", gw_id):
        r.problem("gateway.id", f"{gw_id!r} is not usable in an MQTT topic",
                  "letters, digits, '_', '.', '-'")
    if site.code and not re.fullmatch(r"[A-Za-z0-9_.-]+", site.code):
        r.problem("site.code", f"{site.code!r} is not usable in an MQTT topic",
                  "letters, digits, '_', '.', '-'")
    state_dir = base_dir / r.get(g, "state_dir", "gateway", str, "state")
    listen_text = r.get(g, "listen", "gateway", str, "127.0.0.1:9108")
    listen: tuple[str, int] | None = None
    if listen_text != "off":
        host, _, port_text = listen_text.rpartition(":")
        if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            r.problem("gateway.listen", f"{listen_text!r} is not HOST:PORT",
                      "for example \"127.0.0.1:9108\", or \"off\"")
        else:
            listen = (host, int(port_text))
    listen_public = r.get(g, "listen_public", "gateway", bool, False)
    token_text = r.get(g, "status_token_file", "gateway", str, None)
    token_file = base_dir / token_text if token_text else None
    _check_listen(r, listen, listen_public, token_file)
    return GatewayIdentity(id=gw_id, state_dir=state_dir, listen=listen,
                           listen_public=listen_public, status_token_file=token_file)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _check_listen(r: Reader, listen: tuple[str, int] | None, public: bool,
                  token_file: Path | None) -> None:
    """The status endpoint stays on loopback unless the config says otherwise, and then only
    with a bearer token (issue 21: an open /status tells anyone the site's state)."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            r.problem("gateway.status_token_file", f"cannot read {token_file}: "
                      f"{exc.strerror or exc}", "a file holding the bearer token on one line")
        else:
            if not token:
                r.problem("gateway.status_token_file", f"{token_file} is empty",
                          "put a long random token in it, e.g. `openssl rand -hex 32 > FILE`")
    if listen is None or is_loopback(listen[0]):
        return
    if not public:
        r.problem("gateway.listen", f"{listen[0]!r} is not a loopback address: /status and "
                  "/metrics would be open to the network",
                  "keep \"127.0.0.1:9108\" (scrape through an SSH tunnel or a local agent), or "
                  "set listen_public = true together with status_token_file")
    elif token_file is None:
        r.problem("gateway.status_token_file", "required with listen_public = true: every "
                  "request to a public /status or /metrics must carry a bearer token",
                  "a file holding one line, the token, readable by the gateway only")


_MQTT_KEYS = {"host", "port", "prefix", "protocol", "client_id", "keepalive", "username",
              "password_file", "tls_ca", "tls_cert", "tls_key", "reconnect_min", "reconnect_max",
              "receipts", "receipt_timeout", "encoding", "digits"}


def build_uplink(doc: dict, r: Reader, base_dir: Path, site: Site, gateway: GatewayIdentity
                 ) -> MqttUplink | None:
    up = r.table(doc, "uplink", "uplink")
    r.known(up, {"mqtt"}, "uplink")
    return _mqtt(r.table(up, "mqtt", "uplink.mqtt"), r, base_dir, site, gateway) \
        if "mqtt" in up else None


def _mqtt(m: dict, r: Reader, base_dir: Path, site: Site, gw: GatewayIdentity) -> MqttUplink:
    p = "uplink.mqtt"
    r.known(m, _MQTT_KEYS, p)
    protocol = str(r.get(m, "protocol", p, (str, int, float), "5"))
    if protocol not in ("5", "3.1.1"):
        r.problem(f"{p}.protocol", f"unknown MQTT protocol {protocol!r}", "\"5\" or \"3.1.1\"")
    prefix = r.get(m, "prefix", p, str, "minewatch/v1")
    if any(c in prefix for c in "#+") or prefix.endswith("/"):
        r.problem(f"{p}.prefix", f"prefix {prefix!r} may not hold wildcards or end in '/'")

    def opt_path(key: str) -> Path | None:
        v = r.get(m, key, p, str, None)
        return base_dir / v if v else None

    return MqttUplink(
        host=r.get(m, "host", p, str, "127.0.0.1"),
        port=r.get(m, "port", p, int, 1883),
        prefix=prefix,
        protocol=protocol,
        client_id=r.get(m, "client_id", p, str, f"minewatch-{site.code}-{gw.id}"),
        keepalive=r.get(m, "keepalive", p, int, 30),
        username=r.get(m, "username", p, str, None),
        password_file=opt_path("password_file"),
        tls_ca=opt_path("tls_ca"),
        tls_cert=opt_path("tls_cert"),
        tls_key=opt_path("tls_key"),
        reconnect_min=r.duration(m, "reconnect_min", p, 0.5) or 0.5,
        reconnect_max=r.duration(m, "reconnect_max", p, 30.0) or 30.0,
        receipts=r.get(m, "receipts", p, bool, False),
        receipt_timeout=_receipt_timeout(r, m, p),
        encoding=_encoding(r, m, p),
        digits=_digits(r, m, p),
    )


def _encoding(r: Reader, m: dict, p: str) -> str:
    """How telemetry goes on the wire (`gateway.encodings`); protobuf needs its package."""
    from gateway.encodings import ENCODINGS

    name = r.get(m, "encoding", p, str, "compact")
    if name not in ENCODINGS:
        r.problem(f"{p}.encoding", f"unknown telemetry encoding {name!r}",
                  " | ".join(f'"{e}"' for e in ENCODINGS) + " (compact: the default; json: "
                  "the full format of before)")
        return "compact"
    if name == "protobuf":
        import importlib.util

        try:  # find_spec of a submodule imports its parent, which may be missing too
            found = importlib.util.find_spec("google.protobuf") is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            r.problem(f"{p}.encoding", "\"protobuf\" needs the protobuf package, which is not "
                      "installed", "pip install 'minewatch[protobuf]', or encoding = \"zlib\"")
    return name


def _digits(r: Reader, m: dict, p: str) -> int:
    digits = r.get(m, "digits", p, int, 7)
    if not 6 <= digits <= 17:
        r.problem(f"{p}.digits", f"{digits} significant digits is outside 6..17",
                  "7 (a float32 register's precision) or 17 (every bit of a float64)")
        return 7
    return digits


def _receipt_timeout(r: Reader, m: dict, p: str) -> float:
    timeout = r.duration(m, "receipt_timeout", p, 60.0)
    if timeout is not None and timeout < 1.0:
        r.problem(f"{p}.receipt_timeout", f"{timeout:g} s is too short to wait for a receipt",
                  "at least \"1s\"; the platform answers after it has stored the event")
        return 60.0
    return timeout if timeout is not None else 60.0


def build_storage(doc: dict, r: Reader, base_dir: Path, state_dir: Path) -> InfluxStorage | None:
    st = r.table(doc, "storage", "storage")
    r.known(st, {"influx"}, "storage")
    if "influx" not in st:
        return None
    i = r.table(st, "influx", "storage.influx")
    r.known(i, {"url", "org", "bucket", "token_file", "spool_path", "spool_max_bytes",
                "batch_lines", "flush_interval", "timeout", "retry_max"}, "storage.influx")
    tf = r.get(i, "token_file", "storage.influx", str, None)
    sp = r.get(i, "spool_path", "storage.influx", str, None)
    return InfluxStorage(
        url=r.get(i, "url", "storage.influx", str, "", required=True),
        org=r.get(i, "org", "storage.influx", str, "minewatch"),
        bucket=r.get(i, "bucket", "storage.influx", str, "minewatch"),
        token_file=base_dir / tf if tf else None,
        spool_path=(base_dir / sp) if sp else state_dir / "influx_spool.sqlite",
        spool_max_bytes=_positive(r, i, "spool_max_bytes", int, 64 * 1024 * 1024),
        batch_lines=_positive(r, i, "batch_lines", int, 5000),
        flush_interval=_positive(r, i, "flush_interval", float, 1.0),
        timeout=_positive(r, i, "timeout", float, 10.0),
        retry_max=_positive(r, i, "retry_max", float, 60.0),
    )


def _positive(r, table: dict, key: str, kind: type, default):
    """A `[storage.influx]` count (int) or duration (float: seconds or "10s") above zero."""
    value = r.duration(table, key, "storage.influx", default) if kind is float \
        else r.get(table, key, "storage.influx", kind, default)
    if value is not None and value <= 0:
        r.problem(f"storage.influx.{key}", f"must be above zero, got {value}")
        return default
    return value


def build_outbox(doc: dict, r: Reader, base_dir: Path, state_dir: Path) -> Outbox:
    ob = r.table(doc, "outbox", "outbox")
    r.known(ob, {"path", "max_bytes", "reserve_bytes", "hold_max_bytes"}, "outbox")
    ob_path = r.get(ob, "path", "outbox", str, None)
    return Outbox(
        path=(base_dir / ob_path) if ob_path else state_dir / "outbox.sqlite",
        max_bytes=r.get(ob, "max_bytes", "outbox", int, 256 * 1024 * 1024),
        reserve_bytes=_at_least(r, ob, "reserve_bytes", 0, 4 * 1024 * 1024),
        hold_max_bytes=_at_least(r, ob, "hold_max_bytes", 64 * 1024, 16 * 1024 * 1024),
    )


def _at_least(r: Reader, table: dict, key: str, least: int, default: int) -> int:
    """An `[outbox]` size in bytes, at least `least`."""
    value = r.get(table, key, "outbox", int, default)
    if value < least:
        r.problem(f"outbox.{key}", f"must be at least {least} bytes, got {value}")
        return default
    return value


def build_alerts(doc: dict, r: Reader) -> AlertPolicy:
    a = r.table(doc, "alerts", "alerts")
    p = "alerts"
    r.known(a, {"storm_raises", "storm_window", "storm_hold", "fault_after", "repair_warning",
                "repair_limit"}, p)
    d = AlertPolicy()
    policy = AlertPolicy(
        storm_raises=r.get(a, "storm_raises", p, int, d.storm_raises),
        storm_window=r.duration(a, "storm_window", p, d.storm_window),
        storm_hold=r.duration(a, "storm_hold", p, d.storm_hold),
        fault_after=r.get(a, "fault_after", p, int, d.fault_after),
        repair_warning=r.duration(a, "repair_warning", p, d.repair_warning),
        repair_limit=r.duration(a, "repair_limit", p, d.repair_limit),
    )
    if policy.storm_raises < 2:
        r.problem(f"{p}.storm_raises", "needs at least 2 raises to call a point flapping")
    if policy.fault_after < 1:
        r.problem(f"{p}.fault_after", "needs at least 1 poll")
    if policy.repair_warning > policy.repair_limit:
        r.problem(f"{p}.repair_warning", "comes after repair_limit")
    return policy
