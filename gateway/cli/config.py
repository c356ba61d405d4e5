"""`minewatch config init|validate|show`: a commented starting config, every problem of a config
at once (file:line, key path, hint), and the effective settings with where each came from."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    ROOT,
    command_parser,
    err,
    group_parser,
    load_config,
)
from gateway.i18n import tr

__all__ = ["TEMPLATES", "add_commands", "cmd_config_init", "cmd_config_show",
           "cmd_config_validate"]

TEMPLATES = ("tailings_pond", "underground_mine", "open_pit", "chemical_plant", "metallurgy")


def cmd_config_validate(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, ConfigFileError, load_site

    try:
        cfg = load_site(args.file)
    except ConfigError as exc:
        if args.json:
            doc = {"ok": False, "file": str(exc.file), "encoding": exc.encoding, "problems": [
                {"line": p.line, "key": p.path, "message": p.message, "hint": p.hint,
                 "message_zh": p.message_zh, "hint_zh": p.hint_zh} for p in exc.problems]}
            if isinstance(exc, ConfigFileError):  # not a problem in the file: no file to check
                doc["unreadable"] = {"message": exc.reason.en, "message_zh": exc.reason.zh}
            print(json.dumps(doc, ensure_ascii=False, indent=2))
        elif isinstance(exc, ConfigFileError):
            err(exc.render(args.lang))
        else:
            print(exc.render(args.lang), file=sys.stderr)
        return EXIT_CONFIG
    from gateway.detector_notes import point_notes
    from gateway.sampling_rules import sampling_warnings

    notes = point_notes(cfg)
    warnings = sampling_warnings(cfg)
    summary = {"ok": True, "file": str(cfg.path), "encoding": cfg.encoding, "site": cfg.site.code,
               "gateway": cfg.gateway.id, "buses": len(cfg.buses), "devices": len(cfg.devices),
               "points": len(cfg.points),
               "notes": [{"point": n.point, "detector": n.note.detector,
                          "judges": n.note.judges, "text": n.note.text} for n in notes],
               "warnings": [{"device": w.device, "text": w.text, "clause": w.clause}
                            for w in warnings]}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(tr(args.lang, "valid", file=f"{cfg.path}{_note(cfg.encoding, args.lang)}",
                 site=cfg.site.code, gateway=cfg.gateway.id,
                 buses=len(cfg.buses), devices=len(cfg.devices), points=len(cfg.points)))
        for w in warnings:  # not problems: periods the standards advise against
            print(f"  warning: {w.line()}")
        for n in notes:  # not problems: what the detectors can judge at these cadences
            print(f"  note: {n.text()}")
    return EXIT_OK


def _effective(cfg, raw: dict) -> list[tuple[str, object, str]]:
    """(key path, value, source) for every setting: 'file' when the file sets it, else
    'default' (or 'profile' for what a device inherits from its profile)."""
    import dataclasses
    import math

    rows: list[tuple[str, object, str]] = []

    def plain(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    def walk(prefix: str, obj, raw_part, skip=()) -> None:
        for f in dataclasses.fields(obj):
            if f.name.startswith("_") or f.name in skip:
                continue
            v = getattr(obj, f.name)
            in_file = isinstance(raw_part, dict) and f.name in raw_part
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                walk(f"{prefix}.{f.name}", v, raw_part.get(f.name, {}) if in_file else {})
                continue
            rows.append((f"{prefix}.{f.name}", plain(v), "file" if in_file else "default"))

    walk("site", cfg.site, raw.get("site", {}))
    walk("gateway", cfg.gateway, raw.get("gateway", {}))
    for i, b in enumerate(cfg.buses):
        walk(f"buses[{i}]", b, raw.get("buses", [{}])[i])
    for i, d in enumerate(cfg.devices):
        start = len(rows)
        walk(f"devices[{i}]", d, raw.get("devices", [{}])[i], skip=("profile",))
        rows[start:] = [(k, v, "profile" if k.endswith(".max_read") and src == "default" else src)
                        for k, v, src in rows[start:]]
        rows.append((f"devices[{i}].profile", d.profile.name, "file"))
    for i, p in enumerate(cfg.points):
        start = len(rows)
        walk(f"points[{i}]", p, raw.get("points", [{}])[i], skip=("index",))
        mark = f"points[{i}].thresholds"
        if p.thresholds is not None and p.thresholds.derived:
            # levels the file does not set, derived from a standard (docs/requirements.md R3)
            rows[start:] = [(k, v, "derived" if k.startswith(mark) else src)
                            for k, v, src in rows[start:]]
        elif p.thresholds is not None:
            table = raw.get("points", [{}])[i].get("thresholds", {})
            rows[start:] = [(k, v, _threshold_source(k[len(mark) + 1:], table)
                             if k.startswith(mark + ".") else src) for k, v, src in rows[start:]]
            if p.thresholds.derived_levels:  # e.g. the phreatic line's orange = 1.1 x red
                rows[start:] = [(k, v, "derived" if k == f"{mark}.derived_levels" else src)
                                for k, v, src in rows[start:]]
    raw_mqtt = raw.get("uplink", {}).get("mqtt", {})
    if isinstance(raw_mqtt, dict) and cfg.mqtt:
        walk("uplink.mqtt", cfg.mqtt, raw_mqtt)
    elif isinstance(raw_mqtt, list):  # several [[uplink.mqtt]]
        for i, m in enumerate(cfg.mqtt_targets):
            walk(f"uplink.mqtt[{i}]", m, raw_mqtt[i])
    walk("outbox", cfg.outbox, raw.get("outbox", {}))
    walk("alerts", cfg.alerts, raw.get("alerts", {}))
    return rows


# the thresholds table's keys as users write them, by the model's field
_THRESHOLD_KEYS = {"direction": ("direction",), "raise_samples": ("debounce",),
                   "raise_hold": ("hold",), "clear_samples": ("clear_samples",),
                   "clear_hold": ("clear_hold",), "red_immediate": ("red_immediate",)}
_LEVEL_KEYS = ("blue", "yellow", "orange", "red")


def _threshold_source(field: str, table: dict) -> str:
    """'file' or 'default' for a model field under a point's thresholds: the levels are written
    as blue ... red (in [thresholds.upper] / [thresholds.lower] for direction both), restore
    levels under `restore`, the debounce as `debounce` and `hold`."""
    parts = field.split(".")  # e.g. ["upper", "thresholds"] or ["raise_samples"]
    if parts[0] in ("upper", "lower") and len(parts) == 2:
        side = table.get(parts[0], table) if isinstance(table.get(parts[0]), dict) else table
        if parts[1] == "thresholds":
            return "file" if any(k in side for k in _LEVEL_KEYS) else "default"
        return "file" if "restore" in side else "default"
    keys = _THRESHOLD_KEYS.get(parts[0], (parts[0],))
    return "file" if any(k in table for k in keys) else "default"


def _note(encoding: str, lang: str) -> str:
    """' (read as GB18030)' beside a file that was not plain UTF-8."""
    from gateway.text_files import TextFile

    return TextFile(Path(), "", encoding).note(lang)


def cmd_config_show(args: argparse.Namespace) -> int:
    from gateway.toml_text import read_toml

    cfg = load_config(args.file)
    if cfg is None:
        return EXIT_CONFIG
    raw, _ = read_toml(args.file)  # the file the loader just read, decoded the same way
    rows = _effective(cfg, raw)
    if args.json:
        print(json.dumps([{"key": k, "value": v, "source": src} for k, v, src in rows],
                         ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    for key, value, src in rows:
        text = json.dumps(value, ensure_ascii=False, default=str)
        print(f"{key} = {text}" + ("" if src == "file" else f"    # {src}"))
    return EXIT_OK



def cmd_config_init(args: argparse.Namespace) -> int:
    """Copy a commented template; a file written with --out is validated where it lands."""
    from gateway.text_files import read_text_file

    template = ROOT / "config" / "templates" / f"{args.template}.toml"
    text = read_text_file(template).text  # an edited template may be GBK like any config
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    out: Path = args.out
    if out.exists() and not args.force:
        err(tr(args.lang, "init_exists", file=out))
        return EXIT_CONFIG
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    from gateway.config import ConfigError, load_site

    try:
        load_site(out)
    except ConfigError as exc:
        # a template is tested to validate; this catches a profile library that moved away
        err(tr(args.lang, "init_invalid", template=args.template) + "\n" + exc.render(args.lang))
        return EXIT_CONFIG
    print(tr(args.lang, "init_wrote", file=out, template=args.template))
    return EXIT_OK


def add_commands(sub) -> None:
    csub = group_parser(sub, "config", "site config tools: init, validate, show", [
        "minewatch config init --template tailings_pond --out site.toml",
        "minewatch config validate site.toml", "minewatch config show site.toml"])
    init = command_parser(csub, "init", "write a commented, valid starting config for a kind "
                          "of site", """
  minewatch config init --template tailings_pond --out site.toml
  minewatch config init --template underground_mine > site.toml
  minewatch config init --template open_pit --out site.toml --force   (replace site.toml)
""", cmd_config_init, json_flag=False)
    init.add_argument("--template", required=True, choices=TEMPLATES)
    init.add_argument("--out", type=Path, help="file to write (default: standard output)")
    init.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    validate = command_parser(csub, "validate", "check a site config; list every problem with "
                              "file:line, key path and a hint", """
  minewatch config validate site.toml
  minewatch config validate site.toml --json     (problems as a list, for scripts)
""", cmd_config_validate)
    validate.add_argument("file", type=Path)
    show = command_parser(csub, "show", "the effective config: every setting with its value "
                          "and whether it came from the file, a default or the profile", """
  minewatch config show site.toml
  minewatch config show site.toml --json | jq '.[] | select(.source == "default")'
""", cmd_config_show)
    show.add_argument("file", type=Path)
