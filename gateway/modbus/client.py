"""The gateway's one way of talking Modbus: `make_client` builds the pymodbus 3.x client of a bus,
`read_table` and `write_registers` do one exchange with one device and give its values or a
`ModbusFailure` that says what went wrong.

The daemon's poller (`gateway/acquire.py`) and the field engineer's commands (`minewatch device
test`, `read`, `scan`, `write`) both go through here, so a device answers the CLI exactly as it
answers the daemon: the same client settings, the same strict reply checks
(`gateway.modbus.replies`: a reply that does not answer its request is never data), and the
same clean-up after a failed exchange (`settle`: a late or broken reply cannot answer the next
request). Reconnecting and retrying are the caller's to schedule, never pymodbus's.

A failure's `kind` is how the poller counts it: `timeout` (no reply), `truncated` (part of a
reply by the timeout), `malformed` (a reply that does not answer the request),
`connection_lost` (the device closed or reset the connection), `exception_N` (the device
answered Modbus exception N).
"""

from __future__ import annotations

from gateway.config.model import Bus
from gateway.modbus.planner import FUNCTION_CODES
from gateway.modbus.replies import MalformedReply, StrictSocketFramer, settle, strict_framer

__all__ = ["ModbusFailure", "connect", "make_client", "quiet_line",
           "read_table", "set_timeout", "write_registers"]


class ModbusFailure(Exception):
    """One exchange that gave no data. `detail` is the daemon's log text; `cause` is what the
    CLI shows after its own words (pymodbus's message for silence, the reply checks' detail
    for a malformed reply); `code` the Modbus exception code (0: none); `answered` when a reply
    came (its latency counts); `line_dirty` when an RTU line must go quiet (`quiet_line`)
    before a different request."""

    def __init__(self, kind: str, detail: str, *, reason: str = "", code: int = 0,
                 cause: str = "", answered: bool = False, line_dirty: bool = False):
        super().__init__(detail)
        self.kind = kind
        self.reason = reason or kind
        self.code = code
        self.cause = cause
        self.answered = answered
        self.line_dirty = line_dirty

    @property
    def exception_reply(self) -> bool:
        """The device answered with a Modbus exception (it is there, and said no)."""
        return self.kind.startswith("exception_")


def make_client(bus: Bus, trace=None):
    """A pymodbus 3.x async client for the bus, its replies checked against their request;
    `trace` is pymodbus's packet tracer (scan uses it to tell line noise from silence)."""
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
    from pymodbus.framer import FramerType

    common = {"timeout": bus.timeout, "retries": 0, "reconnect_delay": 0, "trace_packet": trace}
    if bus.transport == "tcp":
        client = AsyncModbusTcpClient(bus.host, port=bus.port, **common)
    elif bus.transport == "rtu_over_tcp":
        client = AsyncModbusTcpClient(bus.host, port=bus.port, framer=FramerType.RTU, **common)
    else:
        client = AsyncModbusSerialClient(bus.serial_port, framer=FramerType.RTU,
                                         baudrate=bus.baudrate, parity=bus.parity,
                                         stopbits=bus.stopbits, bytesize=bus.bytesize, **common)
    # every reply is checked against its request before it is decoded; this also quiets
    # pymodbus's own logging: the poller and the CLI say each failure themselves
    strict_framer(client)
    return client


def set_timeout(client, seconds: float) -> None:
    """Per-device request timeout on a shared bus client. pymodbus 3.x reads the timeout from the
    transaction manager's own copy of the comm params at every request (`ctx` on the async
    clients, `transaction` on the sync ones), so every copy is set."""
    client.comm_params.timeout_connect = seconds
    for name in ("ctx", "transaction"):
        manager = getattr(client, name, None)
        if manager is not None and hasattr(manager, "comm_params"):
            manager.comm_params.timeout_connect = seconds


async def connect(client, bus: Bus) -> str | None:
    """Connect unless connected: None once connected, else why not. pymodbus only says False,
    so a serial port is asked through pyserial; an exception from the driver (a
    pseudo-terminal that refuses parity E, an unplugged USB adapter) is the reason too."""
    if client.connected:
        return None
    try:
        if await client.connect():
            return None
        detail = _open_error(bus)
    except Exception as exc:  # noqa: BLE001 (pyserial raises termios.error, OSError, ...)
        detail = f"{type(exc).__name__}: {exc}"
    client.close()
    return detail


def _open_error(bus: Bus) -> str:
    """Why a serial port did not open (pymodbus only says False): ask pyserial directly."""
    if bus.transport != "rtu":
        return "connection refused or unreachable"
    import serial

    try:
        serial.Serial(bus.serial_port, baudrate=bus.baudrate, parity=bus.parity,
                      stopbits=bus.stopbits, exclusive=True).close()
    except (serial.SerialException, OSError, ValueError) as exc:
        return str(exc)
    return "the port opened on a second try: retry"


async def read_table(client, unit: int, table: str, address: int, count: int) -> list[int]:
    """One read of `count` registers (or bits) of `table` from `address` of device `unit`:
    the registers, or the bits as 0/1; raises ModbusFailure."""
    fc = FUNCTION_CODES[table]
    call = {"holding": client.read_holding_registers, "input": client.read_input_registers,
            "coil": client.read_coils, "discrete": client.read_discrete_inputs}[table]
    where = f"FC{fc} @{address}x{count}"
    rr = await _exchange(client, call(address, count=count, device_id=unit), where)
    if rr.isError():
        code = int(getattr(rr, "exception_code", 0) or 0)
        raise _failed(client, f"exception_{code}", f"exception {code} to FC{fc} register "
                      f"{address} count {count}", code=code, answered=True)
    bits = table in ("coil", "discrete")
    got = len(rr.bits) if bits else len(rr.registers)
    want = 8 * ((count + 7) // 8) if bits else count
    if rr.function_code != fc or rr.dev_id != unit or got != want:
        # the framer checks this already; a reply object that still disagrees is no data
        text = (f"FC{rr.function_code} from unit {rr.dev_id} with {got} values to {where} for "
                f"unit {unit}")
        raise _failed(client, "malformed", f"malformed reply: {text}",
                      reason="reply object mismatch", cause=text, answered=True)
    return [int(b) for b in rr.bits[:count]] if bits else rr.registers


async def write_registers(client, unit: int, address: int, words: list[int],
                          fc16: bool = False) -> None:
    """Write holding registers from `address` of device `unit`: FC06 for one register (what
    most sensor manuals list), FC16 for more or when asked; raises ModbusFailure."""
    single = len(words) == 1 and not fc16
    fc = 6 if single else 16
    where = f"FC{fc} @{address}x{len(words)}"
    request = client.write_register(address, words[0], device_id=unit) if single \
        else client.write_registers(address, words, device_id=unit)
    rr = await _exchange(client, request, where)
    if rr.isError():
        code = int(getattr(rr, "exception_code", 0) or 0)
        raise _failed(client, f"exception_{code}", f"exception {code} to FC{fc} register "
                      f"{address}", code=code, answered=True)


async def _exchange(client, request, where: str):
    """Await one request; silence, a cut-off reply, a lost connection or a malformed reply is a
    ModbusFailure, an exception reply is returned for the caller to name."""
    from pymodbus.exceptions import ConnectionException, ModbusException

    timeout = client.comm_params.timeout_connect
    try:
        rr = await request
    except ConnectionException as exc:
        raise _failed(client, "connection_lost", "the device closed the connection during "
                      f"{where}", cause=str(exc).strip()) from None
    except ModbusException as exc:
        cut = strict_framer(client).pending_bytes
        if cut:
            raise _failed(client, "truncated", f"{cut} bytes of the reply to {where} by the "
                          f"timeout ({timeout:g} s)", reason="reply cut short",
                          cause=str(exc).strip()) from None
        raise _failed(client, "timeout", f"no reply to {where} within {timeout:g} s",
                      reason="no reply", cause=str(exc).strip()) from None
    if isinstance(rr, MalformedReply):
        raise _failed(client, "malformed", f"malformed reply ({where}): {rr.detail}",
                      reason=rr.reason, cause=rr.detail)
    return rr


def _failed(client, kind: str, detail: str, **facts) -> ModbusFailure:
    """The failure, after making sure nothing of this exchange can answer the next request."""
    framer = strict_framer(client)
    transport = "tcp" if isinstance(framer, StrictSocketFramer) else "rtu"
    return ModbusFailure(kind, detail, line_dirty=settle(client, framer, transport, kind),
                         **facts)


async def quiet_line(client, seconds: float) -> None:
    """Wait until nothing has arrived for `seconds`, dropping it: after a failed exchange on an
    RTU line (`ModbusFailure.line_dirty`), before a different request goes out."""
    await strict_framer(client).quiet(seconds)

