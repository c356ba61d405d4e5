"""`[commands]`: whether the gateway takes the platform's commands, the key they must be signed
with, the time window of a request, the reminders of unacknowledged alerts, the probation of a
pushed config and the longest maintenance window (docs/commands.md). Problems are located like
the rest of the config; the key file is read to check it and never quoted."""

from __future__ import annotations

from pathlib import Path

from gateway.config.model import Commands, MqttUplink
from gateway.config.reader import Reader

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
        r.problem(f"{p}.enabled", "commands come over MQTT, and there is no [uplink.mqtt]",
                  "add [uplink.mqtt], or set enabled = false")
    key_text = r.get(c, "key_file", p, str, None)
    key_file = base_dir / key_text if key_text else None
    if key_file is not None:
        from gateway.commands.keys import KeyProblem, read_key

        try:
            read_key(key_file)
        except KeyProblem as exc:
            r.problem(f"{p}.key_file", str(exc), exc.hint)

    def span(key: str, default: float, least: float, most: float, hint: str,
             zero_ok: bool = False) -> float:
        value = r.duration(c, key, p, default)
        if value is None:
            return default
        if zero_ok and value == 0:
            return 0.0
        if not least <= value <= most:
            r.problem(f"{p}.{key}", f"{value:g} s is outside {least:g} s .. {most:g} s", hint)
            return default
        return value

    window = span("window", d.window, 1.0, 86400.0,
                  "a few minutes: the platform's clock and the site's must agree that closely")
    reminder = span("ack_reminder", d.ack_reminder, 60.0, 7 * 86400.0,
                    "for example \"15min\"; 0 turns the reminders off", zero_ok=True)
    growth = r.get(c, "ack_reminder_growth", p, float, d.ack_reminder_growth)
    if growth < 1.0:
        r.problem(f"{p}.ack_reminder_growth", f"{growth:g} would shorten each interval",
                  "1 keeps it, 2 doubles it")
        growth = d.ack_reminder_growth
    most = span("ack_reminder_max", max(d.ack_reminder_max, reminder), 60.0, 7 * 86400.0,
                "the longest interval between two reminders")
    if reminder and most < reminder:
        r.problem(f"{p}.ack_reminder_max", f"{most:g} s is shorter than ack_reminder "
                  f"({reminder:g} s)")
    probation = span("config_probation", d.config_probation, 1.0, 3600.0,
                     "a few minutes: long enough for every device to be polled once")
    maintenance = span("maintenance_max", d.maintenance_max, 60.0, 90 * 86400.0,
                       "GB 51108-2015 §10.0.1 gives a fault 7 days to be repaired")
    return Commands(enabled=enabled, key_file=key_file, window=window, ack_reminder=reminder,
                    ack_reminder_growth=growth, ack_reminder_max=most,
                    config_probation=probation, maintenance_max=maintenance)
