"""The platform's side of a command, as `minewatch cmd` plays it for commissioning and tests:
build the request (`id`, `ts`, the arguments), sign it with the command key when there is one,
publish it on `<prefix>/<site>/<gateway>/cmd/<name>` and wait for its result on `.../cmd_result`
(MQTT 5: that topic as the Response Topic, the id as the Correlation Data). It talks to the
broker through the uplink's own client factory, so the same TLS and credentials apply."""

from __future__ import annotations

import json
import os
import time
import uuid

from gateway.alerts.encoder import topic
from gateway.commands.keys import CommandKey
from gateway.config.model import SiteConfig

__all__ = ["build_request", "send"]


def build_request(cfg: SiteConfig, name: str, args: dict, key: CommandKey | None = None,
                  req_id: str | None = None, ts_ms: int | None = None) -> tuple[str, dict]:
    """(topic, request): `args` with an id and the wall clock's ts, signed with `key`."""
    assert cfg.mqtt is not None
    t = topic(cfg.mqtt.prefix, cfg.site.code, cfg.gateway.id, f"cmd/{name}")
    req = {"id": req_id or str(uuid.uuid4()),
           "ts": ts_ms if ts_ms is not None else int(time.time() * 1000), **args}
    if key is not None:
        req["sig"] = key.sign(t, req)
    return t, req


def send(cfg: SiteConfig, name: str, args: dict, key: CommandKey | None = None,
         timeout: float = 30.0) -> dict:
    """Send one command and wait for its result: {"request", "connect", "puback", "answer"}
    (no "answer" when none came within `timeout`). OSError when the broker is unreachable."""
    from gateway.uplink.client import request_once

    m = cfg.mqtt
    assert m is not None
    t, req = build_request(cfg, name, args, key)
    answer_topic = topic(m.prefix, cfg.site.code, cfg.gateway.id, "cmd_result")
    got = request_once(m, f"{m.client_id}-cmd-{os.getpid()}", t,
                       json.dumps(req, ensure_ascii=False).encode(), answer_topic,
                       lambda doc: doc.get("id") == req["id"], req["id"].encode(), timeout)
    return {"request": req, **got}
