"""Reconnects back off with jitter (gateway/uplink/mqtt.py): gateways a broker restart dropped at
the same instant wait different times, each within its step, the step doubling up to
reconnect_max, so a city's broker is not hit by all of them at once."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.config import load_site
from gateway.outbox import Outbox
from gateway.uplink.mqtt import MqttPublisher

ROOT = Path(__file__).resolve().parent.parent.parent


def test_reconnect_delays_spread_within_a_doubling_step(tmp_path: Path) -> None:
    cfg = load_site(ROOT / "config" / "examples" / "tailings_pond.toml")
    m = cfg.mqtt
    assert m is not None and (m.reconnect_min, m.reconnect_max) == (0.5, 30.0)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    fleet = [MqttPublisher(cfg, outbox, time.time) for _ in range(50)]
    for attempt in range(9):
        step = min(30.0, 0.5 * 2 ** attempt)
        delays = [p.reconnect_delay() for p in fleet]
        assert all(step / 2 <= d <= step for d in delays), (attempt, delays)
        assert max(delays) - min(delays) > step / 4  # 50 gateways do not come back together
    outbox.close()
