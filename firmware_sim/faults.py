"""Fault schedules: when a simulated device or sensor misbehaves, declared by a scenario.

A scenario lists its faults as `[[faults]]` tables; each is a window of scenario time in which one
device (communication faults) or one point (value faults) misbehaves in one way. The schedule is
data, so the same windows drive the live simulator, `firmware-sim generate` and the fault labels
of `firmware-sim labels`.

Communication faults (the device, its firmware or the line misbehaves; acted out by the
responder): `timeout` (no reply), `exception` (Modbus exception `code`, default 4), `crc` (RTU
frame with a bad CRC), `garbled` (line noise instead of a frame), `slow` (reply after `delay`
seconds of simulated time), `drop_connection` (TCP: the device closes the socket).
Device flag faults (the device answers, but says its reading is not valid; acted out by the
simulated firmware): `sensor_fault` sets the profile's `role = "fault"` flags (a gas head's
sensor-element fault or warm-up bit).
Value faults (the sensor reads wrong; applied to the point's value): `stuck` (holds the value it
had at the window's start), `drift` (adds `rate` units per hour since the start), `spike` (adds
`size` at the window's start tick only), `dropout` (no reading: the register holds 0, or NaN for a float, as a disconnected
channel does),
`counter_reset` (a rain counter restarts from 0 at the start: power loss or a clear).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["COMM_FAULTS", "FLAG_FAULTS", "DEVICE_FAULTS", "VALUE_FAULTS", "FAULT_KINDS",
           "Fault", "active_faults"]

COMM_FAULTS = ("timeout", "exception", "crc", "garbled", "slow", "drop_connection")
FLAG_FAULTS = ("sensor_fault",)
DEVICE_FAULTS = COMM_FAULTS + FLAG_FAULTS  # a device's, acted out by the simulated firmware
VALUE_FAULTS = ("stuck", "drift", "spike", "dropout", "counter_reset")
FAULT_KINDS = DEVICE_FAULTS + VALUE_FAULTS


@dataclass(frozen=True)
class Fault:
    """One scheduled fault. `start`/`end` are seconds from the scenario's epoch, end exclusive.

    `device` names a device of the site config (communication faults); `point` names a point
    (value faults). `params` holds the kind's parameters (`code`, `delay`, `rate`, `size`).
    """

    kind: str
    start: float
    end: float
    device: str | None = None
    point: str | None = None
    params: dict = field(default_factory=dict)

    def covers(self, tau: float) -> bool:
        return self.start <= tau < self.end


def active_faults(faults: Iterable[Fault], tau: float, *, device: str | None = None,
                  point: str | None = None) -> list[Fault]:
    """The faults of `device` (or of `point`) active at scenario time `tau` (s from the epoch)."""
    return [f for f in faults if f.covers(tau)
            and (device is None or f.device == device)
            and (point is None or f.point == point)]
