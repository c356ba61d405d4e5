"""Strict replies: every Modbus reply is checked against the request it answers before pymodbus
decodes it, so a malformed reply can never become a value.

What pymodbus 3.16.1 does on its own with a reply that does not answer the request (measured
against `tests/support/fake_modbus.py`, one FC3 read of 4 registers, the gateway's poller):

- takes it as data: a wrong function code (FC4 data for an FC3 request), more registers than
  asked, fewer registers or an odd byte count (the decoder keeps the registers it could parse),
  a byte count smaller than the data that follows, stray bytes after the frame; on RTU a
  CRC-valid frame whose byte count says 250 gives garbage values;
- skips it and times out: a wrong unit id or transaction id (logged at ERROR), a bad CRC, a
  truncated frame, a frame longer than its buffer (silently emptied), a protocol id other
  than 0 (TCP); but a reply with transaction id 0 passes for the answer to any request
  (`FramerBase.handleFrame` and `TransactionManager.execute` skip the check for 0);
- a byte count larger than the data raises inside asyncio's `data_received`: asyncio logs an
  ERROR with a full traceback, closes the connection, and the request times out.

So the client's framer is replaced (`strict_framer`) by one that remembers the request it
framed (unit, function code, transaction id, count) and checks the reply at the depth where
it still has all of that and its byte count: the unit id, the transaction id (TCP), the
function code (or its exception form FC | 0x80), the byte count (2 per register, 1 per 8
bits), the PDU length against the byte count, and nothing after the frame (TCP). Anything else
is handed to pymodbus as a `MalformedReply` carrying the reason: never data, never an
exception inside asyncio's protocol callbacks. A reset connection fails the waiting request at
once (`connection_lost`) instead of after its timeout.

Nothing of a failed exchange may answer the next request (`settle`): on Modbus TCP a late
whole reply is recognised by its transaction id and skipped, and a stream that is out of step
(a cut-off or malformed frame) is closed; RTU has no transaction id, so after a timeout or a
malformed frame the line must go quiet for the device's timeout (`quiet`) before a different
request goes out.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from dataclasses import dataclass

from pymodbus.exceptions import ConnectionException
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import ModbusPDU

__all__ = ["Expected", "MalformedReply", "StrictFramer", "settle", "strict_framer"]

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length (unit id + PDU), unit id
MAX_TCP_LENGTH = 254  # the MBAP length field: unit id + a PDU of at most 253 bytes
MAX_RTU_ADU = 256  # address + PDU of 253 bytes + CRC
RECEIVE_BUFFER = 4 * MAX_RTU_ADU  # so an oversized frame reaches the check, not pymodbus's bin


@dataclass(frozen=True)
class Expected:
    """The request on the wire, as its reply must echo it."""

    unit: int
    tid: int
    function_code: int
    count: int

    @property
    def byte_count(self) -> int | None:
        if self.function_code in (3, 4, 23):
            return 2 * self.count
        if self.function_code in (1, 2):
            return (self.count + 7) // 8
        return None

    @property
    def pdu_length(self) -> int | None:
        """Function code, byte count and data of a read; the echo of a write."""
        if (n := self.byte_count) is not None:
            return 2 + n
        return 5 if self.function_code in (5, 6, 15, 16) else None


class MalformedReply(ModbusPDU):
    """Handed to pymodbus in place of a reply that does not answer the request. `reason` is
    stable (one log line per new reason), `detail` has the numbers."""

    function_code = 0  # not an exception reply: isError() is False, so it must be checked first

    def __init__(self, reason: str, detail: str, dev_id: int, transaction_id: int):
        super().__init__(dev_id=dev_id, transaction_id=transaction_id)
        self.reason = reason
        self.detail = detail


class _Strict:
    """The checks, mixed into pymodbus's socket (MBAP) and RTU framers."""

    def __init__(self, decoder) -> None:
        super().__init__(decoder)  # type: ignore[call-arg]
        self.ctx = None  # pymodbus's transaction manager, set by `strict_framer`
        self.expect: Expected | None = None  # the request in flight; None: nothing is due
        self.last_tid = 0
        self.abandoned: deque[int] = deque(maxlen=8)  # TCP: tids of requests that timed out
        self.pending_bytes = 0  # bytes of an incomplete reply held back at the last receipt
        self.last_rx = 0.0  # monotonic time of the last bytes received
        self.late_replies = 0
        self.stray_bytes = 0

    def buildFrame(self, message: ModbusPDU) -> bytes:  # noqa: N802 (pymodbus's name)
        self.expect = Expected(message.dev_id, message.transaction_id, message.function_code,
                               message.count)
        self.last_tid = message.transaction_id
        self.pending_bytes = 0
        return super().buildFrame(message)  # type: ignore[misc]

    def handleFrame(self, data: bytes, exp_devid: int, exp_tid: int  # noqa: N802
                    ) -> tuple[int, ModbusPDU | None]:
        self.last_rx = time.monotonic()
        if self.expect is None:  # nothing asked (answered already, or the line is settling)
            self.stray_bytes += len(data)
            return len(data), None
        try:
            used, pdu = self._next_frame(data)
        except Exception as exc:  # noqa: BLE001 - nothing may escape into asyncio's callbacks
            used, pdu = len(data), self._malformed("undecodable reply",
                                                   f"{type(exc).__name__}: {exc}")
        self.pending_bytes = 0 if pdu is not None else len(data) - used
        if pdu is not None:
            self.expect = None
        return used, pdu

    def _next_frame(self, data: bytes) -> tuple[int, ModbusPDU | None]:
        raise NotImplementedError

    def _malformed(self, reason: str, detail: str) -> MalformedReply:
        exp = self.expect
        assert exp is not None
        return MalformedReply(reason, detail, exp.unit, exp.tid)

    def _check(self, pdu_bytes: bytes, unit: int, tid: int) -> ModbusPDU:
        """The reply's PDU against the request; pymodbus decodes it only when it fits."""
        exp = self.expect
        assert exp is not None
        if unit != exp.unit:
            return self._malformed("wrong unit id", f"unit id {unit} in the reply to a request "
                                                    f"to unit {exp.unit}")
        if not pdu_bytes:
            return self._malformed("empty PDU", "a frame without a function code")
        fc = pdu_bytes[0]
        what = f"FC{exp.function_code}"
        if fc == exp.function_code | 0x80:
            if len(pdu_bytes) != 2:
                return self._malformed("exception reply of the wrong length",
                                       f"{len(pdu_bytes)}-byte exception PDU to {what}")
        elif fc != exp.function_code:
            return self._malformed("wrong function code",
                                   f"function code {fc} in the reply to {what}")
        elif exp.byte_count is not None:
            if len(pdu_bytes) < 2:
                return self._malformed("no byte count", f"a reply to {what} without data")
            count = pdu_bytes[1]
            unit_word = "registers" if exp.function_code in (3, 4, 23) else "bits"
            if count != exp.byte_count:
                return self._malformed("wrong byte count",
                                       f"byte count {count} in the reply to {what} for "
                                       f"{exp.count} {unit_word} ({exp.byte_count} bytes)")
            if len(pdu_bytes) != 2 + count:
                return self._malformed("byte count does not match the data",
                                       f"byte count {count} with {len(pdu_bytes) - 2} data "
                                       f"bytes in the reply to {what}")
        elif exp.pdu_length is not None and len(pdu_bytes) != exp.pdu_length:
            return self._malformed("wrong PDU length", f"{len(pdu_bytes)}-byte reply to {what}, "
                                                       f"{exp.pdu_length} expected")
        pdu = self.decoder.decode(pdu_bytes)  # type: ignore[attr-defined]
        if pdu is None:
            return self._malformed("undecodable reply", f"pymodbus cannot decode {pdu_bytes[:8].hex()}")
        pdu.dev_id = unit
        pdu.transaction_id = tid
        return pdu

    def connection_changed(self, up: bool) -> None:
        """pymodbus's trace_connect: a new connection starts a new transaction-id sequence; a
        lost one fails the waiting request now rather than at its timeout."""
        if not up and self.expect is not None and self.ctx is not None:
            future = getattr(self.ctx, "response_future", None)
            if future is not None and not future.done():
                future.set_exception(ConnectionException("the device closed the connection"))
        self.expect = None
        self.abandoned.clear()

    async def quiet(self, seconds: float) -> None:
        """Wait until nothing has arrived for `seconds` (at most 3 x `seconds`), dropping
        whatever comes meanwhile, so a late reply cannot pass for the next one."""
        self.expect = None
        start = time.monotonic()
        while True:
            now = time.monotonic()
            idle = now - max(self.last_rx, start)
            if idle >= seconds or now - start >= 3 * seconds:
                break
            await asyncio.sleep(seconds - idle)
        if self.ctx is not None:
            self.ctx.recv_buffer = b""


class StrictSocketFramer(_Strict, FramerSocket):
    """Modbus TCP: the MBAP header, then the PDU."""

    def _next_frame(self, data: bytes) -> tuple[int, ModbusPDU | None]:
        exp = self.expect
        assert exp is not None
        used = 0
        while len(data) - used >= MBAP.size:
            tid, pid, length, unit = MBAP.unpack_from(data, used)
            if pid != 0:
                return len(data), self._malformed("not Modbus TCP", f"protocol id {pid}")
            if not 2 <= length <= MAX_TCP_LENGTH:
                return len(data), self._malformed(
                    "oversized frame" if length > MAX_TCP_LENGTH else "frame length",
                    f"MBAP length {length}; a Modbus TCP frame holds 2 to {MAX_TCP_LENGTH}")
            end = used + 6 + length
            if len(data) < end:
                return used, None  # the rest of the frame is still on its way
            if tid != exp.tid:
                if tid in self.abandoned:  # a whole late reply to a request that timed out
                    self.late_replies += 1
                    used = end
                    continue
                return len(data), self._malformed(
                    "wrong transaction id", f"transaction id {tid} in the reply to {exp.tid}")
            if end != len(data):
                return len(data), self._malformed(
                    "bytes after the frame", f"{len(data) - end} bytes after the reply")
            return len(data), self._check(data[used + 7:end], unit, tid)
        return used, None


class StrictRtuFramer(_Strict, FramerRTU):
    """Modbus RTU (a serial line, or RTU frames over TCP): pymodbus's own hunt for a CRC-valid
    frame (a bad CRC stays a timeout), then the checks."""

    def _next_frame(self, data: bytes) -> tuple[int, ModbusPDU | None]:
        if len(data) > 2 * MAX_RTU_ADU:
            return len(data), self._malformed("oversized frame",
                                              f"{len(data)} bytes without a valid frame")
        used, unit, _, pdu_bytes = self.decode(data)
        if not pdu_bytes:
            return used, None
        return used, self._check(pdu_bytes, unit, 0)


StrictFramer = StrictSocketFramer | StrictRtuFramer


def strict_framer(client) -> StrictFramer:
    """The strict framer of a pymodbus 3.x async client, put in place at the first call."""
    ctx = getattr(client, "ctx", None)
    if not all(hasattr(ctx, a) for a in ("framer", "trace_connect", "recv_buffer",
                                         "max_buffer_size")):
        import pymodbus

        raise RuntimeError(f"pymodbus {pymodbus.__version__}: the gateway's reply checks hook "
                           "into the transaction manager of pymodbus 3.16; install that version")
    framer = ctx.framer
    if isinstance(framer, _Strict):
        return framer  # type: ignore[return-value]
    # pymodbus logs each timeout and skipped frame at ERROR (with the last frames appended): the
    # poller says the same once per new reason per device, with the device's name
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    strict = (StrictRtuFramer if isinstance(framer, FramerRTU) else StrictSocketFramer)(
        framer.decoder)
    strict.ctx = ctx
    ctx.framer = strict
    ctx.max_buffer_size = RECEIVE_BUFFER
    traced = ctx.trace_connect

    def trace_connect(up: bool) -> None:
        traced(up)
        strict.connection_changed(up)

    ctx.trace_connect = trace_connect
    return strict


def settle(client, framer: StrictFramer, transport: str, outcome: str) -> bool:
    """After a failed exchange (`outcome`: a ReadFailure kind), make sure nothing of it can
    answer the next request. True when the line must still go quiet (`quiet`) before a
    different request: RTU has no transaction id to tell a late reply from the next one."""
    framer.expect = None
    if transport == "tcp":
        if outcome == "timeout" and framer.last_tid:
            framer.abandoned.append(framer.last_tid)  # its late reply is recognised and skipped
        elif outcome in ("truncated", "malformed") and client.connected:
            client.close()  # the byte stream is out of step: the next request opens a new one
        return False
    return outcome in ("timeout", "truncated", "malformed")
