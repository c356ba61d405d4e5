"""Counting and stopping any slave this package started, whatever its transport."""

from __future__ import annotations

import asyncio

from firmware_sim.slave.core import SlaveStats
from firmware_sim.slave.serial_slave import SerialSlave
from firmware_sim.slave.tcp import ENDPOINTS

__all__ = ["close_slave", "slave_stats"]


def slave_stats(server: asyncio.AbstractServer | SerialSlave) -> SlaveStats:
    """The counters of a slave started by this package."""
    if isinstance(server, SerialSlave):
        return server.stats
    return ENDPOINTS[server].core.stats


async def close_slave(server: asyncio.AbstractServer | SerialSlave) -> None:
    """Stop listening, close every open connection and wait until the server is down."""
    if isinstance(server, SerialSlave):
        server.close()
        await server.wait_closed()
        return
    server.close()
    endpoint = ENDPOINTS.get(server)
    if endpoint is not None:
        for transport in list(endpoint.transports):
            transport.abort()
    await server.wait_closed()
