"""A simulated line or endpoint in its own thread and event loop, as the site's hardware is."""

from __future__ import annotations

import asyncio
import threading


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
