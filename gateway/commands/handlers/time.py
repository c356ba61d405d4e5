"""`time`: the gateway's clock, and its offset from the platform's (the request's `ts`).

The platform's check of the site clock: `offset_ms` is the gateway's clock when the request
arrived minus `ts`, so it includes the request's transit (milliseconds on a healthy link);
positive means the gateway is ahead. Under a simulated clock (`--time-scale`) the gateway's time
is simulated time and `time_scale` says so.
"""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo

from gateway.alerts.encoder import time_fields
from gateway.commands.request import Args, Request

NAME = "time"
SUMMARY = "the gateway's clock and its offset from the platform's"
EXAMPLES = "minewatch cmd time --config site.toml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    return None


def request(ns: argparse.Namespace) -> dict:
    return {}


async def run(gw, req: Request) -> dict:
    Args(req, set())
    tz = gw.cfg.site.timezone
    return {**time_fields("gateway_time", req.received, ZoneInfo(tz)), "timezone": tz,
            "platform_ts": req.ts, "offset_ms": int(round(req.received * 1000 - req.ts)),
            "time_scale": gw.clock.scale, "clock_steps": gw.clock.jumps}


def show(result: dict, lang: str) -> str:
    offset = result["offset_ms"] / 1000.0
    if lang == "zh":
        return (f"网关时钟 {result['gateway_time_local']}（{result['timezone']}），"
                f"比平台{'快' if offset >= 0 else '慢'} {abs(offset):.3f} 秒")
    return (f"gateway clock {result['gateway_time_local']} ({result['timezone']}), "
            f"{abs(offset):.3f} s {'ahead of' if offset >= 0 else 'behind'} the platform")
