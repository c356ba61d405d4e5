"""The command service: takes the platform's requests, proves them, runs each once, answers.

The gateway subscribes to `<prefix>/<site>/<gateway>/cmd/+` only (its own commands). Requests
are taken one at a time, in arrival order. Each one is, in turn:

1. read: a JSON object with `id` and `ts` (`request.py`); a retained request is refused (it
   would be delivered again at every subscribe);
2. proved, when `[commands] key_file` is set: `sig` must be the request's signature
   (`keys.py`) and `ts` within `window` of the gateway's wall clock;
3. looked up in the ledger (the outbox's `command_log`): a request with an `id` seen before is
   answered again with its first result and not run again (a QoS 1 redelivery, a platform that
   retries); the same `id` with other content is refused as a replay;
4. noted in the ledger, run by its command module (`registry.py`), and its result committed to
   the outbox with the ledger entry in one transaction: the result leaves like an event, so it
   survives an uplink outage. It goes to `.../cmd_result`, and also to the request's MQTT 5
   Response Topic with its Correlation Data when it names one outside this gateway's topics.

A refused request (unreadable, unsigned, a bad signature, stale, a replay, retained) is answered
on `.../cmd_result` with the reason, at most 30 a minute and never stored (a stranger must not
fill the disk), and logged once per reason (then every 100th). A request noted but not answered
when the gateway stopped is answered at the next start as `interrupted`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque

from gateway.alerts.encoder import topic
from gateway.commands.keys import read_key
from gateway.commands.registry import commands
from gateway.commands.request import CommandError, Request, parse_request, result_doc
from gateway.outbox_commands import CommandEntry

__all__ = ["CommandService", "LEDGER_DAYS"]

log = logging.getLogger("minewatch.commands")

LEDGER_DAYS = 30
REFUSALS_PER_MINUTE = 30
QUEUE = 100


class CommandService:
    def __init__(self, gw, cfg):
        self.gw = gw
        self.policy = cfg.commands
        self.key = read_key(self.policy.key_file) if self.policy.key_file else None
        site, gw_id = cfg.site.code, cfg.gateway.id
        self.base = topic(gw.prefix, site, gw_id, "cmd")
        self.result_topic = topic(gw.prefix, site, gw_id, "cmd_result")
        self.own = topic(gw.prefix, site, gw_id, "")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.taken: Counter = Counter()
        self.refused: Counter = Counter()
        self.answered_again = 0
        self._answers: deque[float] = deque()
        self._bad_response_topics = 0

    def start(self) -> None:
        self.queue = asyncio.Queue(QUEUE)
        self.gw.publisher.subscribe(f"{self.base}/+", self.on_message)
        self.task = asyncio.create_task(self._serve(), name="commands")
        if self.key is None:
            log.warning("commands are taken unsigned: anyone the broker lets publish on %s/+ "
                        "commands this gateway; set [commands] key_file", self.base,
                        extra={"event": "commands_unsigned"})
        else:
            log.info("commands on %s/+ must be signed (%s)", self.base, self.key.kind,
                     extra={"event": "commands_signed"})
        outbox = self.gw.outbox
        outbox.prune_commands(time.time() - LEDGER_DAYS * 86400)
        for entry in outbox.unanswered_commands():
            doc = result_doc(*self._where(), entry.id, entry.command, self.gw.clock.now(),
                             error={"code": "interrupted", "message": "the gateway stopped "
                                    "before it answered; whether it took effect is not known "
                                    "(ask `status`)"})
            payload = _dump(doc)
            outbox.commit_result(entry, payload, [(self.result_topic, payload, None)])

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def health(self) -> dict:
        return {"signed": self.key.kind if self.key else None,
                "taken": dict(self.taken), "refused": dict(self.refused),
                "answered_again": self.answered_again}

    def _where(self) -> tuple[str, str]:
        return self.gw.cfg.site.code, self.gw.cfg.gateway.id

    # -- taking requests -------------------------------------------------------------------------
    def on_message(self, msg) -> None:
        """A message on cmd/+ (loop thread); queued, so requests run one at a time."""
        assert self.queue is not None
        try:
            self.queue.put_nowait((msg, self.gw.clock.now()))  # `time` answers from arrival
        except asyncio.QueueFull:
            self._refuse(None, msg.topic.rpartition("/")[2], "busy",
                         f"{QUEUE} requests are waiting; send it again later")

    async def _serve(self) -> None:
        assert self.queue is not None
        while True:
            msg, received = await self.queue.get()
            try:
                await self.handle(msg, received)
            except Exception as exc:  # one bad request must not end the service
                log.error("command on %s failed: %s: %s", msg.topic, type(exc).__name__, exc,
                          extra={"event": "command_crashed"})

    async def handle(self, msg, received: float) -> None:
        if not msg.payload:
            return  # a retained request being cleared: nothing was asked
        name = msg.topic[len(self.base) + 1:]
        try:
            body = parse_request(msg.payload)
        except CommandError as exc:
            self._refuse(exc.detail.get("id"), name, exc.code, str(exc))
            return
        req_id = body["id"]
        if msg.retain:
            self._refuse(req_id, name, "retained", "a command must not be published retained: "
                         "it would be delivered again at every subscribe; clear it")
            return
        why = self._authenticate(msg.topic, body)
        if why is not None:
            self._refuse(req_id, name, *why)
            return
        req = Request(name, msg.topic, req_id, body["ts"], body, received, msg.response_topic,
                      msg.correlation)
        outbox = self.gw.outbox
        entry = outbox.command_entry(req_id)
        if entry is not None:
            self._again(req, entry)
            return
        entry = CommandEntry(req_id, name, time.time(), req.digest, req.by, None)
        outbox.command_received(entry, body)
        command = commands().get(name)
        self.taken[name] += 1
        if command is None:
            error = {"code": "unknown_command", "message": f"no command {name!r}",
                     "known": sorted(commands())}
            doc = result_doc(*self._where(), req_id, name, self.gw.clock.now(), error=error)
        else:
            doc = await self._run(command, req)
        payload = _dump(doc)
        outbox.commit_result(entry, payload, self._messages(req, payload))
        self.gw.publisher.notify()
        log.info("command %s %s from %s: %s", name, req_id, req.by or "the platform",
                 "ok" if doc["ok"] else doc["error"]["code"],
                 extra={"event": "command", "command": name, "id": req_id, "ok": doc["ok"],
                        "by": req.by})

    async def _run(self, command, req: Request) -> dict:
        try:
            result = await command.run(self.gw, req)
        except CommandError as exc:
            return result_doc(*self._where(), req.id, req.command, self.gw.clock.now(),
                              error=exc.as_error())
        except Exception as exc:
            log.error("command %s %s failed: %s: %s", req.command, req.id, type(exc).__name__,
                      exc, extra={"event": "command_failed", "command": req.command})
            return result_doc(*self._where(), req.id, req.command, self.gw.clock.now(),
                              error={"code": "failed", "message": f"{type(exc).__name__}: {exc}"})
        return result_doc(*self._where(), req.id, req.command, self.gw.clock.now(), result)

    def _authenticate(self, topic_: str, body: dict) -> tuple[str, str] | None:
        """Why a request is not proved to come from the key's holder (None: it is)."""
        if self.key is None:
            return None
        if "sig" not in body:
            return ("unsigned", "this gateway takes signed requests only; sig is missing")
        if not self.key.verify(topic_, body):
            return ("bad_signature", f"sig is not the {self.key.kind} signature of this request "
                    "on this topic")
        skew = body["ts"] / 1000.0 - time.time()
        if abs(skew) > self.policy.window:
            return ("stale", f"ts is {skew:+.0f} s from the gateway's clock; requests are taken "
                    f"within ±{self.policy.window:g} s (check both clocks, e.g. with `time`)")
        return None

    def _again(self, req: Request, entry: CommandEntry) -> None:
        """A request seen before: its first answer again, or a replay refused."""
        if entry.digest != req.digest:
            self._refuse(req.id, req.command, "replayed", f"id {req.id} was taken before for "
                         "another request; every request needs a new id")
            return
        self.answered_again += 1
        payload = entry.result
        if payload is None:  # still running: cannot happen one at a time, but say so
            payload = _dump(result_doc(*self._where(), req.id, req.command, self.gw.clock.now(),
                                       error={"code": "running", "message": "still running"}))
        self.gw.outbox.add_results(self._messages(req, payload))
        self.gw.publisher.notify()
        log.info("command %s %s delivered again: answered with its first result, not run again",
                 req.command, req.id, extra={"event": "command_again", "id": req.id})

    def _messages(self, req: Request, payload: bytes) -> list[tuple[str, bytes, bytes | None]]:
        out = [(self.result_topic, payload, req.correlation)]
        rt = req.response_topic
        if rt and rt != self.result_topic:
            if any(c in rt for c in "+#\0") or rt.startswith(("$", self.own)) or len(rt) > 512:
                self._bad_response_topics += 1
                if self._bad_response_topics in (1, 100):
                    log.warning("response topic %r of command %s ignored: not a topic the "
                                "gateway publishes results on (its own topics, wildcards and "
                                "$ topics are refused); answered on %s", rt, req.id,
                                self.result_topic, extra={"event": "response_topic_refused"})
            else:
                out.append((rt, payload, req.correlation))
        return out

    def _refuse(self, req_id: str | None, name: str, code: str, message: str) -> None:
        self.refused[code] += 1
        n = self.refused[code]
        if n == 1 or n % 100 == 0:
            log.warning("command %s (id %s) refused: %s (%d refused for this reason so far)",
                        name, req_id, message, n, extra={"event": "command_refused",
                                                         "reason": code, "command": name})
        now = time.monotonic()
        while self._answers and now - self._answers[0] > 60.0:
            self._answers.popleft()
        if len(self._answers) >= REFUSALS_PER_MINUTE:
            return
        self._answers.append(now)
        doc = result_doc(*self._where(), req_id, name, self.gw.clock.now(),
                         error={"code": code, "message": message})
        self.gw.publisher.publish_now(self.result_topic, doc, qos=1)


def _dump(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
