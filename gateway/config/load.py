"""Load and validate a site config TOML file into the immutable model of `gateway.config.model`.

Every problem is collected (not just the first) and reported with the file, the line where it can
be found, the key path and, where it helps, a hint (`gateway.config.reader`). A config that has
any error is never returned, so a bad file can never replace a good one. Each section has its
builder: `sections` (site, gateway, uplink, storage, outbox, alerts), `devices` (buses and
devices), `points` (points, their conversions and detectors), `thresholds`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from gateway.config.devices import build_buses, build_devices, check_periods
from gateway.config.history import build_history
from gateway.config.model import SiteConfig
from gateway.config.points import build_points
from gateway.config.reader import ConfigError, Locator, Problem, Reader
from gateway.config.sections import (
    build_alerts,
    build_gateway,
    build_outbox,
    build_site,
    build_storage,
    build_uplink,
)

__all__ = ["load_site"]

_TOP_KEYS = {"site", "gateway", "buses", "devices", "points", "uplink", "storage", "outbox",
             "alerts", "profiles_dir", "detector_defaults", "history"}


def load_site(path: str | Path) -> SiteConfig:
    """Read, check and freeze a site config; raise `ConfigError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [Problem("", f"cannot read file: {exc.strerror}")]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            path, [Problem("", f"not valid TOML: {exc}", int(m.group(1)) if m else None)]
        ) from None
    problems: list[Problem] = []
    r = Reader(problems, Locator(text))
    cfg = _build(path, doc, r)
    if problems:
        raise ConfigError(path, problems)
    assert cfg is not None
    return cfg


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

    mqtt = build_uplink(doc, r, base_dir, site, gateway)
    influx = build_storage(doc, r, base_dir, gateway.state_dir)
    outbox = build_outbox(doc, r, base_dir, gateway.state_dir)
    alerts = build_alerts(doc, r)
    history = build_history(doc, r, base_dir, gateway.state_dir, devices, points)
    if r.problems:
        return None
    return SiteConfig(path=path, site=site, gateway=gateway, buses=tuple(buses),
                      devices=tuple(devices), points=tuple(points), mqtt=mqtt, influx=influx,
                      outbox=outbox, alerts=alerts, history=history)
