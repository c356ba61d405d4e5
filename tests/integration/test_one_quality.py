"""One quality per sample everywhere (issue 15): a stuck sensor is `suspect` in its fault event,
in the telemetry the platform receives and in the database (a real VictoriaMetrics), not only in
the fault event. The gateway runs in this process on the simulated clock and is fed the samples
directly (the acquisition path is tested elsewhere), so the test knows which are stuck.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from gateway.batch import Batch
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.daemon import Gateway
from gateway.encodings.decode import decode
from tests.support.services import VictoriaMetrics, free_port, require_binary

ROOT = Path(__file__).resolve().parents[2]
T0 = 1.78e9


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_stuck_sensor_is_suspect_in_telemetry_and_in_the_database(tmp_path: Path) -> None:
    binary = require_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    vm = VictoriaMetrics(binary, tmp_path / "vm", free_port())
    vm.start()
    try:
        text = (ROOT / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
        text = text.replace('state_dir = "../../state/tailings_pond"',
                            f'state_dir = "{tmp_path / "state"}"')
        text = text.replace('listen = "127.0.0.1:9108"', 'listen = "off"')
        text += (f'\n[storage.influx]\nurl = "{vm.url}"\nbucket = "site"\n'
                 'flush_interval = "0.2s"\nretry_max = "1s"\ntimeout = "2s"\n')
        site = tmp_path / "site.toml"
        site.write_text(text, encoding="utf-8")
        cfg = load_site(site)
        gw = Gateway(cfg, SimClock(T0, 1.0))
        wl = next(p.index for p in cfg.points if p.quantity == "water_level")
        idx = np.arange(len(cfg.points), dtype=np.int64)
        rng = np.random.default_rng(2)
        sent: list[tuple[str, bytes]] = []
        for k in range(320):  # the water level frozen for 53 h; the piezometers move
            values = 13.0 + rng.normal(0.0, 0.01, idx.size)
            values[wl] = 1252.0
            t = T0 + 600.0 * k
            gw.on_batch(Batch("d", t, idx, values, np.zeros(idx.size, np.uint8)))
            sent += gw.telemetry.changes(t)

        async def drain() -> None:
            writer = asyncio.create_task(gw.sink.run())
            assert await gw.sink.flush(20.0)
            writer.cancel()

        asyncio.run(drain())
        name = cfg.points[wl].name
        series = {s["metric"]["__name__"]: dict(zip(s["timestamps"], s["values"], strict=True))
                  for s in vm.export(f'{{point="{name}"}}')}
    finally:
        vm.stop()
    faults = [e for e in gw.outbox.alert_log() if e["kind"] == "fault"]
    assert [(e["point"], e["fault"]["quality_name"]) for e in faults] == [(name, "suspect")]
    stuck_from = min(t for t, q in series["reading_quality"].items() if q == 1)
    # stuck after two days (a pond level may hold still for one), suspect from then on
    assert (stuck_from - T0 * 1000) / 3.6e6 == pytest.approx(48.0, abs=1.0)
    assert all(q == 1 for t, q in series["reading_quality"].items() if t >= stuck_from)
    # and the telemetry the platform receives says so too
    reported = [p["quality"] for _, payload in sent for p in decode(payload)["points"]
                if p["point"] == name]
    assert reported[0] == 0 and reported[-1] == 1, reported
    gw.outbox.close()
