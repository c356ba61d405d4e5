"""Every northbound target of a gateway, as the daemon sees them: one `MqttPublisher` per
`[uplink.mqtt]` target, all draining the same outbox, each at its own pace (`outbox_cursors.py`).

The set has a publisher's interface. `notify` wakes every target; the heartbeat goes to every
connected target (`publish_all`); `subscribe`, `publish_now` and `connected` are the first
target's: the platform's commands come over it only, and their results and refusals go back
there (docs/commands.md). A second platform (the province's system beside the city's) gets every
event, record and telemetry message and takes no command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.config.model import SiteConfig
from gateway.outbox import Outbox, Target
from gateway.uplink.mqtt import Incoming, MqttPublisher

__all__ = ["Uplinks", "outbox_targets"]


def outbox_targets(cfg: SiteConfig) -> list[Target]:
    """The targets as the outbox keeps their places, in config order."""
    return [Target(m.name, m.receipts, m.receipt_timeout) for m in cfg.mqtt_targets]


class Uplinks:
    def __init__(self, cfg: SiteConfig, outbox: Outbox, clock_now: Callable[[], float],
                 version: str = "0"):
        self.publishers = [MqttPublisher(cfg, outbox, clock_now, version, target=m)
                           for m in cfg.mqtt_targets]
        self.primary = self.publishers[0]
        self.connected = self.primary.connected

    def subscribe(self, topic_filter: str, handler: Callable[[Incoming], None]) -> None:
        self.primary.subscribe(topic_filter, handler)

    def publish_now(self, topic_: str, doc: dict, qos: int = 0) -> bool:
        return self.primary.publish_now(topic_, doc, qos)

    def publish_all(self, topic_: str, doc: dict, qos: int = 0) -> bool:
        """To every connected target (each under its own prefix); True if any took it."""
        return any([p.publish_now(topic_, doc, qos) for p in self.publishers])

    def notify(self) -> None:
        for p in self.publishers:
            p.notify()

    def pending(self) -> bool:
        """A connected target has events to deliver or to see confirmed."""
        return any(p.connected.is_set() and p.pending() for p in self.publishers)

    async def start(self) -> None:
        for p in self.publishers:
            await p.start()

    async def run(self) -> None:
        await asyncio.gather(*(p.run() for p in self.publishers))

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.publishers))

    def health(self, per_target: dict | None = None) -> list[dict]:
        """Each target's connection and backlog (`per_target`: `Outbox.stats()["targets"]`)."""
        return [p.health(per_target.get(p.name) if per_target else None)
                for p in self.publishers]
