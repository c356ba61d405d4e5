"""A platform request as the gateway reads it, its arguments, and the result it answers with.

A request is a JSON object on `<prefix>/<site>/<gateway>/cmd/<name>` with at least `id` (a
unique string) and `ts` (the platform's clock, epoch ms), the command's arguments beside them,
and `sig` when the gateway has a command key (docs/commands.md). The result on `.../cmd_result`
is `config/schema/cmd_result.schema.json`: `id`, `command`, `ok`, and `result` or `error`
(`code`, `message`, and for a refused config its located `problems`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass

from gateway.alerts.encoder import time_fields
from gateway.commands.canonical import canonical

__all__ = ["Args", "CommandError", "RESULT_SCHEMA", "Request", "parse_request", "result_doc"]

RESULT_SCHEMA = "minewatch/cmd_result/1"
ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
RESERVED = ("id", "ts", "sig")


class CommandError(Exception):
    """A request that fails: `code` for machines (bad_request, not_found, unknown_command,
    invalid_config, failed ...), the message for people, `detail` merged into `error`."""

    def __init__(self, code: str, message: str, **detail: object):
        super().__init__(message)
        self.code = code
        self.detail = detail

    def as_error(self) -> dict:
        return {"code": self.code, "message": str(self), **self.detail}


@dataclass(frozen=True)
class Request:
    command: str
    topic: str
    id: str
    ts: int  # the platform's clock, epoch ms
    body: dict  # the whole JSON object
    received: float  # the gateway's clock when it arrived
    response_topic: str | None = None
    correlation: bytes | None = None

    @property
    def args(self) -> dict:
        return {k: v for k, v in self.body.items() if k not in RESERVED}

    @property
    def digest(self) -> str:
        """What makes two requests with one id the same request: their content, not the
        signature or the delivery."""
        body = {k: v for k, v in self.body.items() if k != "sig"}
        return hashlib.sha256(self.topic.encode() + b"\n" + canonical(body)).hexdigest()

    @property
    def by(self) -> str | None:
        by = self.body.get("by")
        return by if isinstance(by, str) else None


def parse_request(payload: bytes) -> dict:
    """The JSON object of a request with a usable `id` and `ts`; CommandError otherwise (its
    detail holds the id when one could be read)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError("bad_request", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CommandError("bad_request", "a request is a JSON object")
    req_id = body.get("id")
    if not isinstance(req_id, str) or not ID.fullmatch(req_id):
        raise CommandError("bad_request", "id must be a string of 1 to 128 letters, digits or "
                           "._:@-")
    ts = body.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
        raise CommandError("bad_request", "ts must be the platform's time in epoch milliseconds",
                           id=req_id)
    return body


def result_doc(site: str, gateway: str, req_id: str | None, command: str, now: float,
               result: dict | None = None, error: dict | None = None) -> dict:
    doc = {"schema": RESULT_SCHEMA, "id": req_id, "command": command, "ok": error is None,
           "site": site, "gateway": gateway, **time_fields("ts", now)}
    if error is not None:
        doc["error"] = error
    else:
        doc["result"] = result if result is not None else {}
    return doc


class Args:
    """Typed access to a request's arguments; a bad one is a CommandError naming it. Unknown
    arguments are refused, as unknown config keys are: a typo must not pass unnoticed."""

    def __init__(self, req: Request, known: set[str]):
        self.args = req.args
        unknown = sorted(set(self.args) - known)
        if unknown:
            raise CommandError("bad_request", f"unknown argument {unknown[0]!r}",
                               known=sorted(known))

    def text(self, key: str, required: bool = False, max_len: int = 200,
             raw: bool = False) -> str | None:
        """A non-empty string, stripped (`raw`: as sent, a config file's text)."""
        v = self.args.get(key)
        if v is None:
            if required:
                raise CommandError("bad_request", f"{key} is required", argument=key)
            return None
        if not isinstance(v, str) or not v.strip() or len(v) > max_len:
            raise CommandError("bad_request", f"{key} must be a non-empty string of at most "
                               f"{max_len} characters", argument=key)
        return v if raw else v.strip()

    def names(self, key: str) -> list[str] | None:
        v = self.args.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v) \
                or len(v) > 10000:
            raise CommandError("bad_request", f"{key} must be a list of names", argument=key)
        return list(dict.fromkeys(v))

    def seconds(self, key: str) -> float | None:
        """A duration: seconds, or a string such as "30min", "2h"."""
        v = self.args.get(key)
        if v is None:
            return None
        from gateway.config.reader import parse_duration

        try:
            out = parse_duration(v)
        except ValueError as exc:
            raise CommandError("bad_request", f"{key}: {exc}", argument=key) from None
        if not math.isfinite(out) or out < 0:
            raise CommandError("bad_request", f"{key} must be a duration >= 0", argument=key)
        return out

    def epoch_ms(self, key: str) -> float | None:
        """A time in epoch milliseconds, as seconds."""
        v = self.args.get(key)
        if v is None:
            return None
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise CommandError("bad_request", f"{key} must be epoch milliseconds", argument=key)
        return v / 1000.0
