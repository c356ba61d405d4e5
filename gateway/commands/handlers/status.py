"""`status`: the gateway's status document, as `/status` serves it: the health heartbeat
(`config/schema/health.schema.json`) with the version, the config file and every open alert
(with who acknowledged it)."""

from __future__ import annotations

import argparse

from gateway.commands.request import Args, Request

NAME = "status"
SUMMARY = "the gateway's health: devices, outbox, open alerts, maintenance, config version"
EXAMPLES = "minewatch cmd status --config site.toml --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    return None


def request(ns: argparse.Namespace) -> dict:
    return {}


async def run(gw, req: Request) -> dict:
    Args(req, set())
    return gw.status_document(gw.clock.now())


def show(result: dict, lang: str) -> str:
    zh = lang == "zh"
    lines = [(f"网关 {result['gateway']}：设备在线 {result['devices_online']}/"
              f"{len(result['devices'])}，配置版本 {result['config']['version']}") if zh else
             (f"gateway {result['gateway']}: {result['devices_online']}/"
              f"{len(result['devices'])} devices online, config {result['config']['version']}")]
    for a in result.get("alerts", []):
        ack = a.get("acknowledged")
        what = a.get("level") or f"quality {a.get('quality')}"
        lines.append(f"  {a['kind']:6s} {a['point']:12s} {what}"
                     + (f"  ({'已确认' if zh else 'acknowledged'})" if ack else ""))
    for w in result.get("maintenance", []):
        lines.append(f"  {'维护' if zh else 'maintenance'}: {w.get('point') or w.get('device')} "
                     f"{'至' if zh else 'until'} {w['until_iso']} ({w['by']}: {w['reason']})")
    return "\n".join(lines)
