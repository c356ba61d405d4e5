"""The sections of a site config around the field: `[site]`, `[gateway]` (its id, state folder
and the status endpoint, kept on loopback unless a bearer token guards it), one `[uplink.mqtt]`
target (`uplinks.py` reads one or several), `[storage.influx]`, `[outbox]` and `[alerts]`."""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from pathlib import Path

from gateway.config.files import check_mqtt_files, check_secret
from gateway.config.model import (
    AlertPolicy,
    GatewayIdentity,
    InfluxStorage,
    MqttUplink,
    Outbox,
    Site,
)
from gateway.config.reader import Reader
from gateway.i18n import t

__all__ = ["SITE_KINDS", "build_alerts", "build_gateway", "build_mqtt_target", "build_outbox",
           "build_site", "build_storage", "is_loopback"]

SITE_KINDS = ("tailings_pond", "underground_mine", "open_pit", "chemical_plant", "metallurgy")


def build_site(doc: dict, r: Reader) -> Site:
    s = r.table(doc, "site", "site", required=True)
    r.known(s, {"code", "name", "kind", "timezone"}, "site")
    kind = r.get(s, "kind", "site", str, "tailings_pond")
    if kind not in SITE_KINDS:
        r.problem("site.kind", t(f"unknown site kind {kind!r}", f"未知的站点类型 {kind!r}"),
                  t(f"one of {', '.join(SITE_KINDS)}", f"可选：{', '.join(SITE_KINDS)}"))
    tz = r.get(s, "timezone", "site", str, "Asia/Shanghai")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # (OSError: a name holding a NUL byte or too long for the file system)
        r.problem("site.timezone", t(f"unknown time zone {tz!r}", f"未知的时区 {tz!r}"),
                  t("an IANA name such as Asia/Shanghai", "IANA 时区名，例如 Asia/Shanghai"))
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
    topic_chars = t("letters, digits, '_', '.', '-'", "字母、数字、'_'、'.'、'-'")
    if gw_id and not re.fullmatch(r"[A-Za-z0-9_.-]+", gw_id):
        r.problem("gateway.id", t(f"{gw_id!r} is not usable in an MQTT topic",
                                  f"{gw_id!r} 不能用在 MQTT 主题中"), topic_chars)
    if site.code and not re.fullmatch(r"[A-Za-z0-9_.-]+", site.code):
        r.problem("site.code", t(f"{site.code!r} is not usable in an MQTT topic",
                                 f"{site.code!r} 不能用在 MQTT 主题中"), topic_chars)
    state_dir = base_dir / r.get(g, "state_dir", "gateway", str, "state")
    listen_text = r.get(g, "listen", "gateway", str, "127.0.0.1:9108")
    listen: tuple[str, int] | None = None
    if listen_text != "off":
        host, _, port_text = listen_text.rpartition(":")
        if not host or not port_text.isascii() or not port_text.isdigit() \
                or not 0 <= int(port_text) <= 65535:
            r.problem("gateway.listen", t(f"{listen_text!r} is not HOST:PORT",
                                          f"{listen_text!r} 不是 主机:端口 的形式"),
                      t("for example \"127.0.0.1:9108\", or \"off\"",
                        "例如 \"127.0.0.1:9108\"，或 \"off\""))
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
        check_secret(r, "gateway.status_token_file", token_file)
    if listen is None or is_loopback(listen[0]):
        return
    if not public:
        r.problem("gateway.listen", t(
            f"{listen[0]!r} is not a loopback address: /status and /metrics would be open to "
            "the network", f"{listen[0]!r} 不是本机回环地址：/status 和 /metrics 将向网络开放"),
            t("keep \"127.0.0.1:9108\" (scrape through an SSH tunnel or a local agent), or set "
              "listen_public = true together with status_token_file",
              "保持 \"127.0.0.1:9108\"（通过 SSH 隧道或本机代理采集），或设置 "
              "listen_public = true 并同时配置 status_token_file"))
    elif token_file is None:
        r.problem("gateway.status_token_file", t(
            "required with listen_public = true: every request to a public /status or /metrics "
            "must carry a bearer token",
            "listen_public = true 时必须配置：对公开的 /status 或 /metrics 的每个请求都要带令牌"),
            t("a file holding one line, the token, readable by the gateway only",
              "一个只含一行令牌的文件，只允许网关读取"))


_MQTT_KEYS = {"host", "port", "prefix", "protocol", "client_id", "keepalive", "username",
              "password_file", "tls_ca", "tls_cert", "tls_key", "reconnect_min", "reconnect_max",
              "receipts", "receipt_timeout", "encoding", "digits", "name", "max_inflight",
              "sparkplug_group", "sparkplug_primary_host"}


def build_mqtt_target(m: dict, r: Reader, base_dir: Path, site: Site, gw: GatewayIdentity,
                      p: str = "uplink.mqtt", name: str = "platform",
                      client_id: str | None = None) -> MqttUplink:
    """One northbound target at key path `p` (`gateway/config/uplinks.py` reads one or many);
    `name` and `client_id` are its defaults."""
    r.known(m, _MQTT_KEYS, p)
    protocol = str(r.get(m, "protocol", p, (str, int, float), "5"))
    if protocol not in ("5", "3.1.1"):
        r.problem(f"{p}.protocol", t(f"unknown MQTT protocol {protocol!r}",
                                     f"未知的 MQTT 协议版本 {protocol!r}"),
                  t("\"5\" or \"3.1.1\"", "\"5\" 或 \"3.1.1\""))
    prefix = r.get(m, "prefix", p, str, "minewatch/v1")
    if any(c in prefix for c in "#+") or prefix.endswith("/"):
        r.problem(f"{p}.prefix", t(f"prefix {prefix!r} may not hold wildcards or end in '/'",
                                   f"前缀 {prefix!r} 不能含通配符，也不能以 '/' 结尾"))

    def opt_path(key: str) -> Path | None:
        v = r.get(m, key, p, str, None)
        return base_dir / v if v else None

    username = r.get(m, "username", p, str, None)
    password_file = opt_path("password_file")
    if password_file is not None and not username:
        r.problem(f"{p}.password_file", t("a password without a username is never sent",
                                          "没有 username 时密码不会被发送"),
                  t("set username too", "请同时设置 username"))
    tls = (opt_path("tls_ca"), opt_path("tls_cert"), opt_path("tls_key"))
    check_mqtt_files(r, p, password_file, *tls)
    reconnect_min = r.duration(m, "reconnect_min", p, 0.5, lo=0.1, hi=300.0)
    reconnect_max = r.duration(m, "reconnect_max", p, 30.0, lo=1.0, hi=3600.0)
    if reconnect_min > reconnect_max:
        r.problem(f"{p}.reconnect_min", t("is longer than reconnect_max",
                                          "比 reconnect_max 还长"))
    encoding = _encoding(r, m, p)
    return MqttUplink(
        host=r.get(m, "host", p, str, "127.0.0.1"),
        port=r.number(m, "port", p, 1883, 1, 65535, integer=True),
        prefix=prefix,
        protocol=protocol,
        client_id=r.get(m, "client_id", p, str, client_id or f"minewatch-{site.code}-{gw.id}"),
        # 0 would switch MQTT's keep-alive off: a dead link would never be noticed
        keepalive=r.number(m, "keepalive", p, 30, 5, 65535, integer=True, unit="s"),
        username=username,
        password_file=password_file,
        tls_ca=tls[0],
        tls_cert=tls[1],
        tls_key=tls[2],
        reconnect_min=reconnect_min,
        reconnect_max=reconnect_max,
        receipts=r.get(m, "receipts", p, bool, False),
        # the platform answers after it has stored the event: less than a second is a resend
        # storm, more than a day an alert nobody confirms
        receipt_timeout=r.duration(m, "receipt_timeout", p, 60.0, lo=1.0, hi=86400.0),
        encoding=encoding,
        digits=r.number(m, "digits", p, 7, 6, 17, integer=True),
        name=r.get(m, "name", p, str, name),
        # a window over 1000 messages buys nothing on any link and holds that many in memory
        max_inflight=r.number(m, "max_inflight", p, 20, 1, 1000, integer=True),
        sparkplug_group=_sparkplug_group(r, m, p, encoding, site),
        sparkplug_primary_host=_sparkplug_primary_host(r, m, p, encoding),
    )


def _sparkplug_primary_host(r: Reader, m: dict, p: str, encoding: str) -> str:
    """The Primary Host Application's host_id: a topic level of `spBv1.0/STATE/<host_id>`
    (Sparkplug 3.0.0's STATE topic), empty for none."""
    if "sparkplug_primary_host" not in m:
        return ""
    if encoding != "sparkplug":
        r.problem(f"{p}.sparkplug_primary_host", t(
            f"only used with encoding = \"sparkplug\" (this target's is \"{encoding}\")",
            f"仅在 encoding = \"sparkplug\" 时使用（该目标为 \"{encoding}\"）"),
            t("remove it, or set encoding = \"sparkplug\"",
              "删除该键，或设置 encoding = \"sparkplug\""))
        return ""
    host = r.get(m, "sparkplug_primary_host", p, str, "")
    if not host or any(c in host for c in "/+#"):
        r.problem(f"{p}.sparkplug_primary_host", t(
            f"{host!r} is not a Sparkplug host_id: it must be non-empty, without '/', '+', '#'",
            f"{host!r} 不能用作 Sparkplug host_id：不能为空，不能含 '/'、'+'、'#'"),
            t("the Primary Host ID your SCADA host publishes its STATE under, for example "
              "sparkplug_primary_host = \"IgnitionPrimary\"; or remove the key",
              "SCADA 主机发布 STATE 所用的 Primary Host ID，例如 "
              "sparkplug_primary_host = \"IgnitionPrimary\"；或删除该键"))
        return ""
    return host


def _sparkplug_group(r: Reader, m: dict, p: str, encoding: str, site: Site) -> str:
    """The Sparkplug B group_id: a topic level of its own (Sparkplug 3.0.0 §4.1.1.1)."""
    if "sparkplug_group" in m and encoding != "sparkplug":
        r.problem(f"{p}.sparkplug_group", t(
            f"only used with encoding = \"sparkplug\" (this target's is \"{encoding}\")",
            f"仅在 encoding = \"sparkplug\" 时使用（该目标为 \"{encoding}\"）"),
            t("remove it, or set encoding = \"sparkplug\"",
              "删除该键，或设置 encoding = \"sparkplug\""))
    group = r.get(m, "sparkplug_group", p, str, site.code)
    if not group or any(c in group for c in "/+#"):
        r.problem(f"{p}.sparkplug_group", t(
            f"{group!r} is not a Sparkplug group_id: it must be non-empty, without '/', '+', '#'",
            f"{group!r} 不能用作 Sparkplug group_id：不能为空，不能含 '/'、'+'、'#'"),
            t("for example sparkplug_group = \"TailingsPonds\"",
              "例如 sparkplug_group = \"TailingsPonds\""))
    return group


def _encoding(r: Reader, m: dict, p: str) -> str:
    """How telemetry goes on the wire (`gateway.encodings`); protobuf needs its package."""
    from gateway.encodings import ENCODINGS

    name = r.get(m, "encoding", p, str, "compact")
    if name not in ENCODINGS:
        choices = " | ".join(f'"{e}"' for e in ENCODINGS)
        r.problem(f"{p}.encoding", t(f"unknown telemetry encoding {name!r}",
                                     f"未知的遥测编码 {name!r}"),
                  t(f"{choices} (compact: the default; json: the full format of before; "
                    "sparkplug: a Sparkplug B edge node)",
                    f"{choices}（compact 为默认；json 为以前的完整格式；"
                    "sparkplug 为 Sparkplug B 边缘节点）"))
        return "compact"
    if name in ("protobuf", "sparkplug"):
        import importlib.util

        try:  # find_spec of a submodule imports its parent, which may be missing too
            found = importlib.util.find_spec("google.protobuf") is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            r.problem(f"{p}.encoding", t(f"\"{name}\" needs the protobuf package, which is not "
                                         "installed", f"\"{name}\" 需要 protobuf 包，但未安装"),
                      t("pip install 'minewatch[protobuf]', or encoding = \"zlib\"",
                        "pip install 'minewatch[protobuf]'，或 encoding = \"zlib\""))
    return name


def build_storage(doc: dict, r: Reader, base_dir: Path, state_dir: Path) -> InfluxStorage | None:
    st = r.table(doc, "storage", "storage")
    r.known(st, {"influx"}, "storage")
    if "influx" not in st:
        return None
    i = r.table(st, "influx", "storage.influx")
    r.known(i, {"url", "org", "bucket", "token_file", "spool_path", "spool_max_bytes",
                "batch_lines", "flush_interval", "timeout", "retry_max"}, "storage.influx")
    tf = r.get(i, "token_file", "storage.influx", str, None)
    token_file = base_dir / tf if tf else None
    if token_file is not None:
        check_secret(r, "storage.influx.token_file", token_file)
    sp = r.get(i, "spool_path", "storage.influx", str, None)
    return InfluxStorage(
        url=r.get(i, "url", "storage.influx", str, "", required=True),
        org=r.get(i, "org", "storage.influx", str, "minewatch"),
        bucket=r.get(i, "bucket", "storage.influx", str, "minewatch"),
        token_file=token_file,
        spool_path=(base_dir / sp) if sp else state_dir / "influx_spool.sqlite",
        spool_max_bytes=_positive(r, i, "spool_max_bytes", int, 64 * 1024 * 1024, 1 << 40),
        batch_lines=_positive(r, i, "batch_lines", int, 5000, 1_000_000),
        flush_interval=_positive(r, i, "flush_interval", float, 1.0, 3600.0),
        timeout=_positive(r, i, "timeout", float, 10.0, 600.0),
        retry_max=_positive(r, i, "retry_max", float, 60.0, 86400.0),
    )


def _positive(r, table: dict, key: str, kind: type, default, hi: float):
    """A `[storage.influx]` count (int) or duration (float: seconds or "10s") above zero and
    at most `hi`."""
    value = r.duration(table, key, "storage.influx", default) if kind is float \
        else r.get(table, key, "storage.influx", kind, default)
    if value is not None and value <= 0:
        r.problem(f"storage.influx.{key}", t(f"must be above zero, got {value}",
                                             f"必须大于零，实际为 {value}"))
        return default
    if value is not None and value > hi:
        r.problem(f"storage.influx.{key}", t(f"{value:g} is out of range: allowed up to {hi:g}",
                                             f"{value:g} 超出允许范围（最大 {hi:g}）"))
        return default
    return value


def build_outbox(doc: dict, r: Reader, base_dir: Path, state_dir: Path) -> Outbox:
    ob = r.table(doc, "outbox", "outbox")
    r.known(ob, {"path", "max_bytes", "reserve_bytes", "hold_max_bytes"}, "outbox")
    ob_path = r.get(ob, "path", "outbox", str, None)
    return Outbox(
        path=(base_dir / ob_path) if ob_path else state_dir / "outbox.sqlite",
        max_bytes=r.number(ob, "max_bytes", "outbox", 256 * 1024 * 1024, 16 * 1024, 1 << 40,
                           integer=True, unit="bytes"),
        reserve_bytes=r.number(ob, "reserve_bytes", "outbox", 4 * 1024 * 1024, 0, 1 << 30,
                               integer=True, unit="bytes"),
        hold_max_bytes=r.number(ob, "hold_max_bytes", "outbox", 16 * 1024 * 1024, 64 * 1024,
                                4 << 30, integer=True, unit="bytes"),
    )


def build_alerts(doc: dict, r: Reader) -> AlertPolicy:
    a = r.table(doc, "alerts", "alerts")
    p = "alerts"
    r.known(a, {"storm_raises", "storm_window", "storm_hold", "fault_after", "repair_warning",
                "repair_limit"}, p)
    d = AlertPolicy()
    policy = AlertPolicy(
        # 2: a point raised twice within the window is flapping; fewer cannot flap
        storm_raises=r.number(a, "storm_raises", p, d.storm_raises, 2, 1_000_000, integer=True),
        storm_window=r.duration(a, "storm_window", p, d.storm_window, lo=60.0, hi=7 * 86400.0),
        # downgrades and clears wait at most a day: a hold is never a way to keep a level up
        storm_hold=r.duration(a, "storm_hold", p, d.storm_hold, hi=86400.0),
        fault_after=r.number(a, "fault_after", p, d.fault_after, 1, 1000, integer=True),
        repair_warning=r.duration(a, "repair_warning", p, d.repair_warning, lo=3600.0,
                                  hi=365 * 86400.0),
        repair_limit=r.duration(a, "repair_limit", p, d.repair_limit, lo=3600.0,
                                hi=365 * 86400.0),
    )
    if policy.repair_warning > policy.repair_limit:
        r.problem(f"{p}.repair_warning", t("comes after repair_limit", "晚于 repair_limit"))
    return policy
