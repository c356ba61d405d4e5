"""A stop never hangs on a bus task that lost its cancel (issue 20's runs saw one: a cancel that
arrives with a Modbus reply can be swallowed inside a library's wait_for on Python 3.11)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gateway.daemon import Gateway


def test_a_bus_task_that_swallows_its_first_cancel_is_cancelled_again() -> None:
    polls = []

    async def stubborn_bus() -> None:
        swallowed = False
        while True:
            try:
                await asyncio.sleep(0.05)
                polls.append(1)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True  # as a lost cancel: the loop polls on

    async def main() -> SimpleNamespace:
        gw = SimpleNamespace(_workers=[asyncio.create_task(stubborn_bus())])
        await asyncio.sleep(0.1)
        await asyncio.wait_for(Gateway._stop_workers(gw), timeout=5.0)
        return gw

    gw = asyncio.run(main())
    assert gw._workers == [] and polls  # stopped, after polling on for a while
