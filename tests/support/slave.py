"""The simulator's slave in tests: a line or endpoint in its own thread and event loop, as the
site's hardware is, and a register source with fixed tables and injectable faults."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from firmware_sim.slave import Reply


class Slave(threading.Thread):
    """`with Slave(lambda: serve_tcp(source, host, port)):` serves until the block ends."""

    def __init__(self, start_server):
        super().__init__(daemon=True)
        self.start_server = start_server
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        async def main() -> None:
            server = await self.start_server()
            self.ready.set()
            while not self.stop.is_set():
                await asyncio.sleep(0.02)
            server.close()

        asyncio.run(main())

    def __enter__(self) -> Slave:
        self.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(5)


class LoopThread:
    """An asyncio loop on a daemon thread; `run` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="slave-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class FixedSource:
    """Two (or more) devices with fixed tables; `faults` injects a Reply at (unit, table, address)."""

    SIZE = 100

    def __init__(self, units: tuple[int, ...] = (1, 2)) -> None:
        self._units = set(units)
        self.tables = {
            u: {
                "holding": [u * 1000 + i for i in range(self.SIZE)],
                "input": [u * 2000 + i for i in range(self.SIZE)],
                "coil": [i % 3 == 0 for i in range(self.SIZE)],
                "discrete": [i % 2 == 1 for i in range(self.SIZE)],
            }
            for u in units
        }
        self.faults: dict[tuple[int, str, int], Reply] = {}

    def units(self) -> set[int]:
        return self._units

    def read(self, unit: int, table: str, address: int, count: int) -> Reply:
        data = self.tables[unit][table]
        if address + count > len(data):
            return Reply(exception=2)
        fault = self.faults.get((unit, table, address))
        values = data[address : address + count]
        return fault._replace(registers=values) if fault else Reply(registers=values)

    def write(self, unit: int, table: str, address: int, values: list) -> Reply:
        data = self.tables[unit][table]
        if address + len(values) > len(data):
            return Reply(exception=2)
        fault = self.faults.get((unit, table, address))
        if fault and (fault.exception or fault.silent or fault.drop_connection):
            return fault
        data[address : address + len(values)] = values
        return fault or Reply()
