"""Load and validate a site config TOML file into the immutable model of `gateway.config.model`.

Every problem is collected (not just the first) and reported with the file, the line where it can
be found, the key path and, where it helps, a hint (`gateway.config.reader`). A config that has
any error is never returned, so a bad file can never replace a good one. Each section has its
builder: `sections` (site, gateway, storage, outbox, alerts), `uplinks` (the MQTT targets), `devices` (buses and
devices), `points` (points, their conversions and detectors), `thresholds`, `commands`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.config.commands import build_commands
from gateway.config.devices import build_buses, build_devices, check_periods
from gateway.config.history import build_history
from gateway.config.model import SiteConfig
from gateway.config.points import build_points
from gateway.config.reader import ConfigError, ConfigFileError, Locator, Problem, Reader
from gateway.config.sections import (
    build_alerts,
    build_gateway,
    build_outbox,
    build_site,
    build_storage,
)
from gateway.config.uplinks import build_uplinks, check_sparkplug_devices
from gateway.i18n import Text
from gateway.text_files import TextFile, TextFileError, read_text_file
from gateway.toml_text import parse_toml

__all__ = ["load_site"]

_TOP_KEYS = {"site", "gateway", "buses", "devices", "points", "uplink", "storage", "outbox",
             "alerts", "profiles_dir", "detector_defaults", "commands", "history"}


def load_site(path: str | Path, text: str | None = None) -> SiteConfig:
    """Read, check and freeze a site config; raise `ConfigError` listing every problem
    (`ConfigFileError` when the file cannot be read at all). The file is UTF-8 (a BOM is
    dropped) or GB18030 (`gateway.text_files`); the config's `encoding` says which.
    `text`: check this text as if it were the file at `path` (its relative paths, profiles
    and key files resolve beside `path`): a config pushed by the platform, before it is written."""
    path = Path(path)
    try:
        file = read_text_file(path) if text is None else TextFile(path, text, "utf-8")
        doc = parse_toml(file)
    except TextFileError as exc:
        if exc.unreadable:
            raise ConfigFileError(path, exc.reason, exc.hint) from None
        where = f" (column {exc.column})" if exc.column else ""
        where_zh = f"（第 {exc.column} 列）" if exc.column else ""
        hint = exc.hint or Text("", "")
        raise ConfigError(path, [Problem("", exc.reason.en + where, exc.line, hint.en,
                                         exc.reason.zh + where_zh, hint.zh)]) from None
    problems: list[Problem] = []
    r = Reader(problems, Locator(file.text))
    cfg = _build(path, doc, r)
    if problems:
        raise ConfigError(path, problems, file.encoding)
    assert cfg is not None
    return replace(cfg, source=file.text, encoding=file.encoding)


def _build(path: Path, doc: dict, r: Reader) -> SiteConfig | None:
    """Every section in the file's order of dependence (a device names its bus, a point its
    device), so each problem is recorded where it is first seen."""
    base_dir = path.resolve().parent
    r.known(doc, _TOP_KEYS, "")
    site = build_site(doc, r)
    gateway = build_gateway(doc, r, base_dir, site)

    profile_dirs = [base_dir / "profiles", base_dir.parent / "profiles"]
    extra = r.get(doc, "profiles_dir", "", str, None)
    if extra:
        profile_dirs.insert(0, base_dir / extra)

    buses = build_buses(doc, r)
    devices = build_devices(doc, r, {b.name: b for b in buses}, profile_dirs)
    points = build_points(doc, r, {d.name: d for d in devices})
    check_periods(devices, points, r, doc)

    uplinks = build_uplinks(doc, r, base_dir, site, gateway)
    check_sparkplug_devices(r, uplinks, devices, points)
    mqtt = uplinks[0] if uplinks else None
    influx = build_storage(doc, r, base_dir, gateway.state_dir)
    outbox = build_outbox(doc, r, base_dir, gateway.state_dir)
    alerts = build_alerts(doc, r)
    commands = build_commands(doc, r, base_dir, mqtt)
    history = build_history(doc, r, base_dir, gateway.state_dir, devices, points)
    if r.problems:
        return None
    return SiteConfig(path=path, site=site, gateway=gateway, buses=tuple(buses),
                      devices=tuple(devices), points=tuple(points), mqtt=mqtt, uplinks=uplinks,
                      influx=influx,
                      outbox=outbox, alerts=alerts, commands=commands, history=history)
