"""`[commands]`: whether the gateway takes the platform's commands, the key they must be signed
with, the time window of a request, the reminders of unacknowledged alerts, the probation of a
pushed config and the longest maintenance window (docs/commands.md). Problems are located like
the rest of the config; the key file is read to check it and never quoted."""

from __future__ import annotations

from pathlib import Path

from gateway.config.model import Commands, MqttUplink
from gateway.config.reader import Reader
from gateway.i18n import Text, t

__all__ = ["build_commands"]

_KEYS = {"enabled", "key_file", "window", "ack_reminder", "ack_reminder_growth",
         "ack_reminder_max", "config_probation", "maintenance_max"}


def build_commands(doc: dict, r: Reader, base_dir: Path, mqtt: MqttUplink | None) -> Commands:
    c = r.table(doc, "commands", "commands")
    p = "commands"
    r.known(c, _KEYS, p)
    d = Commands()
    enabled = r.get(c, "enabled", p, bool, d.enabled)
    if enabled and mqtt is None:
        r.problem(f"{p}.enabled", t("commands come over MQTT, and there is no [uplink.mqtt]",
                                    "命令经 MQTT 下发，但没有 [uplink.mqtt]"),
                  t("add [uplink.mqtt], or set enabled = false",
                    "加上 [uplink.mqtt]，或设 enabled = false"))
    key_text = r.get(c, "key_file", p, str, None)
    key_file = base_dir / key_text if key_text else None
    if key_file is not None:
        from gateway.commands.keys import KeyProblem, read_key

        try:
            read_key(key_file)
        except KeyProblem as exc:
            r.problem(f"{p}.key_file", t(str(exc), exc.zh), t(exc.hint, exc.hint_zh))

    def span(key: str, default: float, least: float, most: float, hint: Text,
             zero_ok: bool = False) -> float:
        value = r.duration(c, key, p, default)
        if value is None:
            return default
        if zero_ok and value == 0:
            return 0.0
        if not least <= value <= most:
            r.problem(f"{p}.{key}", t(f"{value:g} s is outside {least:g} s .. {most:g} s",
                                      f"{value:g} 秒不在 {least:g} 秒 .. {most:g} 秒之内"), hint)
            return default
        return value

    window = span("window", d.window, 1.0, 86400.0,
                  t("a few minutes: the platform's clock and the site's must agree that closely",
                    "几分钟：平台与现场的时钟须在这个范围内一致"))
    reminder = span("ack_reminder", d.ack_reminder, 60.0, 7 * 86400.0,
                    t("for example \"15min\"; 0 turns the reminders off",
                      "例如 \"15min\"；0 表示不提醒"), zero_ok=True)
    growth = r.get(c, "ack_reminder_growth", p, float, d.ack_reminder_growth)
    if growth < 1.0:
        r.problem(f"{p}.ack_reminder_growth", t(f"{growth:g} would shorten each interval",
                                                f"{growth:g} 会使每次提醒间隔变短"),
                  t("1 keeps it, 2 doubles it", "1 保持不变，2 每次加倍"))
        growth = d.ack_reminder_growth
    most = span("ack_reminder_max", max(d.ack_reminder_max, reminder), 60.0, 7 * 86400.0,
                t("the longest interval between two reminders", "两次提醒之间的最长间隔"))
    if reminder and most < reminder:
        r.problem(f"{p}.ack_reminder_max", t(f"{most:g} s is shorter than ack_reminder "
                                             f"({reminder:g} s)",
                                             f"{most:g} 秒短于 ack_reminder（{reminder:g} 秒）"))
    probation = span("config_probation", d.config_probation, 1.0, 3600.0,
                     t("a few minutes: long enough for every device to be polled once",
                       "几分钟：足够每台设备被轮询一次"))
    maintenance = span("maintenance_max", d.maintenance_max, 60.0, 90 * 86400.0,
                       t("GB 51108-2015 §10.0.1 gives a fault 7 days to be repaired",
                         "GB 51108-2015 第 10.0.1 条规定故障 7 天内修复"))
    return Commands(enabled=enabled, key_file=key_file, window=window, ack_reminder=reminder,
                    ack_reminder_growth=growth, ack_reminder_max=most,
                    config_probation=probation, maintenance_max=maintenance)
