"""An MQTT publisher run in the test's own event loop, against a real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gateway.uplink.mqtt import MqttPublisher


@contextlib.asynccontextmanager
async def draining(publisher: MqttPublisher) -> AsyncIterator[MqttPublisher]:
    """`publisher` started and draining its outbox; afterwards the drain is cancelled and the
    publisher stopped, as the daemon does at a stop."""
    await publisher.start()
    drain = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
        await publisher.stop()
