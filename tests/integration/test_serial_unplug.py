"""A USB RS-485 adapter pulled out and plugged back in while the gateway runs.

On site the line is a USB adapter under a stable name (`/dev/serial/by-id/usb-...`, a udev
symlink). Pulled out, the device node goes away and the open port fails; plugged back, a new
node appears under the same name. Here the adapter is a pseudo-terminal whose slave path is
reached through a symlink: "unplugging" stops the simulator's serial slave, closes the pty
master and removes the symlink; "plugging in" opens a new pty pair and points the symlink at it.
The gateway must mark the line's points as communication faults meanwhile, never die, and read
good values again once the adapter is back, without a restart. Skipping a device that fails
(`degrade_after`) is for a dead device on a working line; with the whole line down nobody
answers, and skipping them all kept the gateway blind for `degrade_time` (10 min) after the
adapter was back. The last device still polled is the line's probe: when it answers, the
skipped ones are probed at once.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from firmware_sim.scenario import load_scenario
from firmware_sim.slave import LineSettings, open_pty_pair, serve_rtu_serial
from gateway.clock import SimClock
from gateway.config import load_site
from gateway.daemon import Gateway
from tests.integration.test_rtu_buses import SPEEDUP, _source
from tests.support.services import free_port
from tests.support.sites import example_site
from tests.support.slave import Slave


class Adapter:
    """A pty behind a stable symlink, with the simulator's RTU slave on its master side."""

    def __init__(self, link: Path, source) -> None:
        self.link, self.source = link, source
        self.master: int | None = None
        self.slave: Slave | None = None

    def plug(self) -> None:
        self.master, path = open_pty_pair()
        master = self.master
        self.slave = Slave(lambda: serve_rtu_serial(self.source, master, LineSettings(9600, "N")))
        self.slave.__enter__()
        tmp = self.link.with_suffix(".new")
        tmp.symlink_to(path)
        tmp.replace(self.link)

    def unplug(self) -> None:
        self.link.unlink(missing_ok=True)
        if self.slave is not None:
            self.slave.__exit__(None, None, None)
        if self.master is not None:
            os.close(self.master)
        self.master, self.slave = None, None


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_an_adapter_pulled_out_and_plugged_back_in_reads_again(tmp_path: Path) -> None:
    link = tmp_path / "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"
    cfg_path = example_site(tmp_path, modbus_port=1, mqtt_port=free_port(), replace={
        **SPEEDUP, 'transport = "tcp"\nhost = "127.0.0.1"\nport = 1\n':
        f'transport = "rtu"\nserial_port = "{link}"\nbaudrate = 9600\nparity = "N"\n'})
    adapter = Adapter(link, _source(cfg_path))
    adapter.plug()
    cfg = load_site(cfg_path)
    scenario = load_scenario("rainstorm")
    gw = Gateway(cfg, SimClock(scenario.epoch + 30 * 3600, 1.0))
    gw.publisher = None
    batches: list[tuple[float, object]] = []
    on_batch = gw.on_batch
    gw.on_batch = lambda b: (batches.append((time.monotonic(), b)), on_batch(b))[1]
    marks: dict[str, float] = {}

    def hands() -> None:
        time.sleep(4.0)
        marks["out"] = time.monotonic()
        adapter.unplug()
        time.sleep(5.0)
        marks["in"] = time.monotonic()
        adapter.plug()

    t = threading.Thread(target=hands, daemon=True)
    t.start()
    try:
        asyncio.run(gw.run(duration=20.0))
    finally:
        t.join(10)
        adapter.unplug()
    before = [b for at, b in batches if at < marks["out"]]
    during = [b for at, b in batches if marks["out"] + 1.5 < at < marks["in"]]
    after = [b for at, b in batches if at > marks["in"] + 5.0]
    assert before and all((b.quality == 0).all() for b in before)
    assert during and all((b.quality != 0).all() for b in during)
    assert {b.device for b in after} == {"radar_wl1", "vw_logger_a"}
    assert all((b.quality == 0).all() for b in after), [(b.device, b.quality) for b in after]
