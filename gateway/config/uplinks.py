"""`[uplink.mqtt]`: the northbound targets. One table, as every config before issue 20 has it,
or several `[[uplink.mqtt]]`, each with its own `name`, broker, credentials, TLS, prefix and
window; the first carries the platform's commands. Each target is read by
`sections.build_mqtt_target`; here the set is checked: names unique and usable, and no two
targets that would take each other's connection or send the same topics to the same broker."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config.model import Device, GatewayIdentity, MqttUplink, Point, Site
from gateway.config.reader import Reader
from gateway.config.sections import build_mqtt_target
from gateway.i18n import t

__all__ = ["build_uplinks", "check_sparkplug_devices"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def build_uplinks(doc: dict, r: Reader, base_dir: Path, site: Site, gateway: GatewayIdentity
                  ) -> tuple[MqttUplink, ...]:
    """Every target in the file's order (empty without `[uplink.mqtt]`)."""
    up = r.table(doc, "uplink", "uplink")
    r.known(up, {"mqtt"}, "uplink")
    raw = up.get("mqtt")
    if raw is None:
        return ()
    if isinstance(raw, dict):
        return (build_mqtt_target(raw, r, base_dir, site, gateway),)
    if not isinstance(raw, list) or not raw:
        r.problem("uplink.mqtt", t("expected one [uplink.mqtt] table or [[uplink.mqtt]] tables",
                                   "应为一个 [uplink.mqtt] 表或若干 [[uplink.mqtt]] 表"),
                  t("one broker: [uplink.mqtt]; several: [[uplink.mqtt]] with a name each",
                    "一个代理：[uplink.mqtt]；多个：每个 [[uplink.mqtt]] 各有 name"))
        return ()
    targets: list[MqttUplink] = []
    for i, m in enumerate(raw):
        p = f"uplink.mqtt[{i}]"
        if not isinstance(m, dict):
            r.problem(p, t("expected a table", "应为表（table）"))
            continue
        if len(raw) > 1 and "name" not in m:
            r.problem(f"{p}.name", t("missing key: each of several targets needs its name",
                                     "缺少该键：多个目标各需一个 name"),
                      t("for example name = \"city\" and name = \"province\"",
                        "例如 name = \"city\" 与 name = \"province\""))
        name = m.get("name") if isinstance(m.get("name"), str) else "platform"
        targets.append(build_mqtt_target(
            m, r, base_dir, site, gateway, p, "platform",
            # the first keeps the id a single target has; two ids alike would throw each other off
            None if i == 0 else f"minewatch-{site.code}-{gateway.id}-{name}"))
    _check_set(r, targets, [i for i, m in enumerate(raw) if isinstance(m, dict)])
    return tuple(targets)


def _check_set(r: Reader, targets: list[MqttUplink], index: list[int]) -> None:
    seen: dict[str, int] = {}
    brokers: dict[tuple, MqttUplink] = {}
    topics: dict[tuple, MqttUplink] = {}
    for m, i in zip(targets, index, strict=True):
        p = f"uplink.mqtt[{i}]"
        if not _NAME.fullmatch(m.name):
            r.problem(f"{p}.name", t(f"{m.name!r} is not usable as a target's name",
                                     f"{m.name!r} 不能用作目标名称"),
                      t("1 to 64 letters, digits, '_', '.', '-'",
                        "1 至 64 个字母、数字、'_'、'.'、'-'"))
        elif m.name in seen:
            r.problem(f"{p}.name", t(f"target name {m.name!r} is taken by uplink.mqtt"
                                     f"[{seen[m.name]}]",
                                     f"目标名称 {m.name!r} 已被 uplink.mqtt[{seen[m.name]}] 使用"),
                      t("each target keeps its own place in the outbox under its name: give "
                        "each its own", "每个目标按名称在发件箱中记录自己的进度：名称须各不相同"))
        else:
            seen[m.name] = i
        where = (m.host.lower(), m.port)
        other = brokers.get((*where, m.client_id))
        if other is not None:
            r.problem(f"{p}.client_id", t(
                f"target {other.name!r} connects to {m.host}:{m.port} with the same client id "
                f"{m.client_id!r}: the broker would drop one connection for the other",
                f"目标 {other.name!r} 以相同的客户端标识 {m.client_id!r} 连接 {m.host}:{m.port}："
                "代理会为一个连接断开另一个"),
                t("give this target its own client_id", "请为该目标设置不同的 client_id"))
        brokers.setdefault((*where, m.client_id), m)
        other = topics.get((*where, m.prefix))
        if other is not None:
            r.problem(f"{p}.prefix", t(
                f"target {other.name!r} already sends the same topics ({m.prefix}/...) to "
                f"{m.host}:{m.port}: its platform would get every event twice",
                f"目标 {other.name!r} 已向 {m.host}:{m.port} 发送相同主题（{m.prefix}/...）："
                "平台会收到每个事件两次"),
                t("another prefix, or another broker", "换一个前缀，或换一个代理"))
        topics.setdefault((*where, m.prefix), m)


def check_sparkplug_devices(r: Reader, targets: tuple[MqttUplink, ...], devices: list[Device],
                            points: list[Point]) -> None:
    """On a Sparkplug target each device with points is a device_id, one topic level: no '/',
    '+' or '#' in its name (Sparkplug 3.0.0 §4.1.1.4)."""
    if not any(m.encoding == "sparkplug" for m in targets):
        return
    used = {p.device for p in points}
    for i, d in enumerate(devices):
        if d.name in used and any(c in d.name for c in "/+#"):
            r.problem(f"devices[{i}].name", t(
                f"{d.name!r} is not a Sparkplug device_id (a target has encoding = "
                "\"sparkplug\"): no '/', '+' or '#'",
                f"{d.name!r} 不能用作 Sparkplug device_id（有目标设置了 encoding = "
                "\"sparkplug\"）：不能含 '/'、'+'、'#'"),
                t("rename the device, for example with '_' or '-'",
                  "请重命名设备，例如改用 '_' 或 '-'"))
