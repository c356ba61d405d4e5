"""`measure`: poll now, out of schedule, and answer with the values (GB 39496-2020 §5.5.3 asks
for measurement on request, 应答式).

`{"points": [...]}` or `{"devices": [...]}` (neither: every device) are polled at once: each bus
makes the poll at its next free moment, after the poll in progress, through its own task, so a
serial line still carries one request at a time. The answer comes within the devices' own
timeouts and retries, never at the next period; a device that does not answer in that time is
named in `unanswered`. Each point's value, unit, quality, level (the alert level in force after
this sample was graded) and time is in the result, and the same values go out as telemetry of
kind `measured`. A formula point is measured by polling its inputs.
"""

from __future__ import annotations

import argparse
import asyncio
import math

from gateway.alerts.encoder import LEVEL_NAMES, QUALITY_NAMES, ROMAN
from gateway.commands.request import Args, CommandError, Request

NAME = "measure"
SUMMARY = "poll points or devices now, out of schedule, and answer with their values"
EXAMPLES = """
  minewatch cmd measure --config site.toml
  minewatch cmd measure --config site.toml --points WL-01,JRX-01
  minewatch cmd measure --config site.toml --devices radar_wl1 --json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--points", help="comma-separated point names")
    which.add_argument("--devices", help="comma-separated device names")


def request(ns: argparse.Namespace) -> dict:
    if ns.points:
        return {"points": _split(ns.points)}
    if ns.devices:
        return {"devices": _split(ns.devices)}
    return {}


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _worst_poll(gw, device) -> float:
    """The longest one poll of `device` may take, in real seconds: every request timing out
    through every retry, with the pauses and the line's quiet time."""
    n = max(1, len(gw.pollers[device.name].requests))
    per = device.timeout * (device.retries + 1) + 0.75 * device.retries
    return n * (per + device.pause_between_requests) + device.pause_after_connect \
        + device.timeout


async def poll_devices(gw, names: list[str]) -> dict[str, str]:
    """Poll these devices now through their buses' tasks; device -> why it got no poll."""
    cfg = gw.cfg
    async with gw.busy:  # no reload in the middle of it
        asked, budget, missing = {}, 1.0, {}
        for bus in cfg.buses:
            devices = [cfg.device(n) for n in names if cfg.device(n).bus == bus.name]
            if not devices:
                continue
            worker = gw.bus_workers.get(bus.name)
            if worker is None:
                missing.update({d.name: f"bus {bus.name} is not polling" for d in devices})
                continue
            asked[bus.name] = (worker.poll_now([gw.pollers[d.name] for d in devices]), devices)
            on_bus = [d for d in cfg.devices if d.bus == bus.name]
            # the poll in progress, then ours
            budget = max(budget, max(_worst_poll(gw, d) for d in on_bus)
                         + sum(_worst_poll(gw, d) for d in devices) + 1.0)
        futures = [f for f, _ in asked.values()]
        if futures:
            await asyncio.wait(futures, timeout=budget)
        for bus, (fut, devices) in asked.items():
            if not fut.done():
                fut.cancel()
                why = f"no poll within {budget:.1f} s"
            elif fut.cancelled() or fut.exception() is not None:
                why = f"bus {bus} stopped (a reload?)"
            else:
                continue
            missing.update({d.name: why for d in devices})
        return missing


def _devices_of(cfg, points) -> list[str]:
    """The devices whose poll gives these points (a formula point: its inputs')."""
    by_name = {p.name: p for p in cfg.points}
    out: list[str] = []
    todo, seen = list(points), set()
    while todo:
        p = todo.pop()
        if p.name in seen:
            continue
        seen.add(p.name)
        if p.formula is not None:
            todo.extend(by_name[n] for n in p.formula.inputs if n in by_name)
        elif p.device and p.device not in out:
            out.append(p.device)
    return out


async def run(gw, req: Request) -> dict:
    a = Args(req, {"points", "devices"})
    points, devices = a.names("points"), a.names("devices")
    if points and devices:
        raise CommandError("bad_request", "give points or devices, not both")
    cfg = gw.cfg
    by_name = {p.name: p for p in cfg.points}
    known_devices = {d.name for d in cfg.devices}
    if points:
        unknown = [n for n in points if n not in by_name]
        if unknown:
            raise CommandError("not_found", f"no point {unknown[0]!r} in the running config",
                               unknown=unknown)
        wanted = [by_name[n] for n in points]
        names = _devices_of(cfg, wanted)
    else:
        unknown = [n for n in devices or [] if n not in known_devices]
        if unknown:
            raise CommandError("not_found", f"no device {unknown[0]!r} in the running config",
                               unknown=unknown)
        names = devices or [d.name for d in cfg.devices]
        wanted = [p for p in cfg.points if p.device in names or
                  (p.formula is not None and set(_devices_of(cfg, [p])) <= set(names))]
    missing = await poll_devices(gw, names)
    now = gw.clock.now()
    t = gw.telemetry
    out = []
    for p in wanted:
        i = p.index
        v, at, q = float(t.last[i]), float(t.last_t[i]), int(t.last_quality[i])
        level = int(gw.engine.level[i])
        entry = {"point": p.name, "device": p.device, "quantity": p.quantity, "unit": p.unit,
                 "value": v if math.isfinite(v) else None, "quality": q,
                 "quality_name": QUALITY_NAMES[q], "level": LEVEL_NAMES[level],
                 "grade_roman": ROMAN[level],
                 "observed_at": int(round(at * 1000)) if math.isfinite(at) else None}
        if gw.maintenance.window_of(i, now) is not None:
            entry["maintenance"] = True
        if p.device in missing:
            entry["error"] = missing[p.device]
        out.append(entry)
    if out:
        gw.outbox.add_telemetry([t.measured([p.index for p in wanted], now, req.id)])
        gw.publisher.notify()
    return {"devices": names, "unanswered": missing, "points": out,
            "asked_at": int(round(req.received * 1000))}


def show(result: dict, lang: str) -> str:
    lines = []
    for p in result["points"]:
        value = "-" if p["value"] is None else f"{p['value']:.4g}"
        extra = "  maintenance" if p.get("maintenance") else ""
        extra += f"  ({p['error']})" if p.get("error") else ""
        lines.append(f"{p['point']:14s} {value:>12s} {p['unit']:6s} {p['quality_name']:12s} "
                     f"{p['level']}{extra}")
    for device, why in result["unanswered"].items():
        lines.append(f"{device}: {why}")
    return "\n".join(lines)
