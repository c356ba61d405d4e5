"""Modbus slave (responder) of the simulated sensor firmware: TCP, RTU over TCP, RTU on a serial line.

The rest of the simulator plugs a `RegisterSource` in (the registers of the devices on one line
or endpoint); this package speaks the protocol for it. It is our own lean asyncio responder rather
than pymodbus's server so that faults can be injected at the frame level (a late, missing,
corrupt or cut-off reply; a closed connection; noise at the wrong baud rate) and so that a large
simulated site costs little CPU: no per-request logging, no request objects, one
`asyncio.Protocol` per connection and no task unless a reply is delayed.

One module per job:

- `core`: the PDU core with fault injection (`Reply`, `RegisterSource`, `SlaveStats`), and the
  in-order answering of one client stream;
- `tcp`: `serve_tcp`, Modbus TCP (MBAP), many connections, pipelined requests answered in order;
- `rtu`: RTU framing (length by function code, CRC, resync after noise), and
  `serve_rtu_over_tcp`, RTU frames over a TCP stream as a serial-to-Ethernet DTU carries them;
- `line`: serial line settings and the pty / termios plumbing (`open_pty_pair`,
  `read_client_line`);
- `serial_slave`: `serve_rtu_serial`, RTU on a serial port or on the master side of a
  pseudo-terminal whose slave path the client opens like a real port;
- `control`: `slave_stats` and `close_slave` for a slave of any transport.
"""

from __future__ import annotations

from firmware_sim.slave.control import close_slave, slave_stats
from firmware_sim.slave.core import RegisterSource, Reply, SlaveStats
from firmware_sim.slave.line import ClientLine, LineSettings, open_pty_pair, read_client_line
from firmware_sim.slave.rtu import serve_rtu_over_tcp
from firmware_sim.slave.serial_slave import SerialSlave, serve_rtu_serial
from firmware_sim.slave.tcp import serve_tcp
from firmware_sim.wire import ExceptionCode

__all__ = [
    "ClientLine",
    "ExceptionCode",
    "LineSettings",
    "RegisterSource",
    "Reply",
    "SerialSlave",
    "SlaveStats",
    "close_slave",
    "open_pty_pair",
    "read_client_line",
    "serve_rtu_over_tcp",
    "serve_rtu_serial",
    "serve_tcp",
    "slave_stats",
]
