"""A wall-clock step (NTP after boot, an operator setting the time) never stalls polling.

Real parts: the simulator over Modbus TCP, the gateway's poller and bus scheduler. The clock is
the production `WallClock` with a settable step added to what it reads as wall time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from gateway.acquire import BusWorker, DevicePoller
from gateway.clock import WallClock
from gateway.config import load_site
from tests.support.services import free_port, python_cli, wait_port
from tests.support.sites import example_site


class SteppedWallClock(WallClock):
    step = 0.0

    def _wall(self) -> float:
        return time.time() + self.step


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("step", [-3600.0, +3600.0], ids=["back_1h", "forward_1h"])
def test_polling_goes_on_through_a_wall_clock_step(tmp_path: Path, step: float, caplog) -> None:
    port = free_port()
    cfg_path = example_site(tmp_path, modbus_port=port, mqtt_port=1883,
                            replace={'period = "10min"': 'period = "0.5s"',
                                     'abnormal_period = "5min"': 'abnormal_period = "0.5s"'})
    sim = python_cli("firmware_sim.cli", "serve", "--scenario", "rainstorm", "--site-config",
                     str(cfg_path), "--listen", f"127.0.0.1:{port}", log=tmp_path / "sim.log")
    try:
        wait_port(port)
        cfg = load_site(cfg_path)
        clock = SteppedWallClock()
        poller = DevicePoller(cfg.device("radar_wl1"), cfg)
        batches: list = []
        worker = BusWorker(cfg.buses[0], [poller], clock, batches.append, lambda d: d.period)

        async def run() -> tuple[int, int]:
            task = asyncio.create_task(worker.run())
            await asyncio.sleep(1.6)
            before = len(batches)
            clock.step = step
            await asyncio.sleep(2.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return before, len(batches)

        with caplog.at_level(logging.WARNING, logger="minewatch.clock"):
            before, after = asyncio.run(run())
    finally:
        sim.terminate()
        sim.wait(10)
    assert before >= 3
    assert after - before >= 3, "polling stalled after the wall clock was stepped"
    assert poller.stats.missed_deadlines == 0, "a clock step counted as missed polls"
    assert clock.jumps == 1 and "wall clock jumped by" in caplog.text
    # the batches carry the new wall time: a step is reported, never hidden
    assert batches[-1].t - batches[before - 1].t == pytest.approx(step, abs=5.0)
