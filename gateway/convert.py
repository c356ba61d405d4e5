"""Derived quantities (docs/conversions.md): register values of one device -> the points' values.

Built once per device from the config, then applied to every poll as numpy operations over all
points of that device, grouped by conversion kind:
- `radar_level`: water-level elevation = mount elevation - empty height;
- `vibrating_wire`: F = f^2/1000; P = k (F - F0) + b (T - T0) kPa (k < 0 for gauges whose
  frequency falls as pressure rises); head = P / 9.81 + install elevation; phreatic depth =
  mouth elevation - head;
- `horizontal`: GNSS horizontal displacement = sqrt(X^2 + Y^2) of two channels;
- `rain_counter`: the rolling rainfall over `window` (1 h, 24 h) from a tipping-bucket gauge's
  cumulative counter, kept in 60 time buckets per point (bounded state); a counter that runs
  backwards has wrapped (when it fell by more than half its `wrap` range) or was cleared or lost
  power (then the new reading is the rain since the reset, and the reset is counted and logged);
- `linear`: scale and offset; `none`: the register value as decoded.
A register reading outside the sensor's range in its profile (a VW frequency of 0 is an
unconnected or broken gauge) or a point value outside its plausible range is `out_of_range`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from detectors.base import Quality
from gateway.config.model import Device, Point

__all__ = ["DeviceConverter", "RainWindow", "UNIT_TO_METRE"]

log = logging.getLogger("minewatch.convert")
RAIN_BUCKETS = 60

UNIT_TO_METRE = {"mm": 0.001, "cm": 0.01, "m": 1.0}
GRAVITY_KPA_PER_M = 9.81  # kPa per metre of water head (docs/conversions.md)


class DeviceConverter:
    """Turns one device's decoded register vector into its points' values and quality codes."""

    def __init__(self, device: Device, points: Sequence[Point], register_index: dict[str, int]):
        self.device = device
        self.points = tuple(points)
        self.idx = np.array([p.index for p in points], dtype=np.int64)
        n = len(points)
        self._chan = np.array([register_index[p.channel] for p in points], dtype=np.int64)
        prof = device.profile
        self._raw_min = np.array([_or_nan(prof.register(p.channel).valid_min) for p in points])
        self._raw_max = np.array([_or_nan(prof.register(p.channel).valid_max) for p in points])
        self._pl_min = np.array([_or_nan(p.plausible_min) for p in points])
        self._pl_max = np.array([_or_nan(p.plausible_max) for p in points])
        kinds = np.array([p.conversion.kind for p in points])

        def group(kind: str) -> np.ndarray:
            return np.flatnonzero(kinds == kind)

        self._linear = group("linear")
        self._lin_scale = np.array([points[i].conversion.params.get("scale", 1.0)
                                    for i in self._linear])
        self._lin_offset = np.array([points[i].conversion.params.get("offset", 0.0)
                                     for i in self._linear])
        self._radar = group("radar_level")
        self._radar_mount = np.array([points[i].conversion.params["mount_elevation"]
                                      for i in self._radar])
        self._radar_unit = np.array([
            UNIT_TO_METRE.get(prof.register(points[i].channel).unit, 0.001) for i in self._radar
        ])
        self._horizontal = group("horizontal")
        self._y = np.array([register_index[points[i].conversion.params["y_channel"]]
                            for i in self._horizontal], dtype=np.int64)
        self._rain = group("rain_counter")
        self.rain = [RainWindow(points[i].name, points[i].conversion.params["window"],
                                points[i].conversion.params.get("wrap"))
                     for i in self._rain]
        vw = group("vibrating_wire")
        self._vw = vw

        def vw_param(key: str, default: float) -> np.ndarray:
            return np.array([points[i].conversion.params.get(key, default) for i in vw],
                            dtype=np.float64)

        self._vw_k = vw_param("k", 0.0)
        self._vw_f0 = vw_param("f0", 0.0)
        self._vw_t0 = vw_param("t0", 0.0)
        self._vw_b = vw_param("b", 0.0)
        self._vw_install = vw_param("install_elevation", 0.0)
        self._vw_mouth = vw_param("mouth_elevation", np.nan)
        temp_channels = [points[i].conversion.params.get("temperature_channel") for i in vw]
        self._vw_temp = np.array([register_index[c] if c else -1 for c in temp_channels],
                                 dtype=np.int64)
        # 0 = pore pressure (kPa), 1 = piezometric head (m), 2 = phreatic depth (m)
        self._vw_out = np.array([
            {"pore_pressure": 0, "piezometric_head": 1}.get(points[i].quantity, 2) for i in vw
        ], dtype=np.int64)
        self._n = n
        self.raw = np.full(n, np.nan)
        self.raw_aux = np.full(n, np.nan)
        self.conditions: tuple[tuple[int, str, dict], ...] = ()

    def convert(self, reg_values: np.ndarray, reg_ok: np.ndarray, t: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray]:
        """Point values (float64) and quality (uint8) from the decoded register vector at `t`."""
        raw = reg_values[self._chan]
        ok = reg_ok[self._chan]
        # the measurands as read, kept for the record beside the converted values
        self.raw = np.where(ok, raw, np.nan).astype(np.float64)
        self.raw_aux = np.full(self._n, np.nan)
        quality = np.where(ok, Quality.GOOD, Quality.DEVICE_FAULT).astype(np.uint8)
        with np.errstate(invalid="ignore"):
            out_raw = (raw < self._raw_min) | (raw > self._raw_max)
        quality[ok & out_raw] = Quality.OUT_OF_RANGE
        values = raw.astype(np.float64, copy=True)
        if self._linear.size:
            values[self._linear] = raw[self._linear] * self._lin_scale + self._lin_offset
        if self._radar.size:
            values[self._radar] = self._radar_mount - raw[self._radar] * self._radar_unit
        if self._horizontal.size:
            y = reg_values[self._y]
            values[self._horizontal] = np.hypot(raw[self._horizontal], y)
            y_bad = ~reg_ok[self._y]
            quality[self._horizontal[y_bad & (quality[self._horizontal] == Quality.GOOD)]] = \
                Quality.DEVICE_FAULT
        resets = []
        for k, i in enumerate(self._rain):
            if quality[i] == Quality.GOOD:
                values[i] = self.rain[k].update(t, float(raw[i]))
                if self.rain[k].reset is not None:  # cleared or power-lost: a fault event
                    resets.append((int(i), "counter_reset", self.rain[k].reset))
        self.conditions = tuple(resets)
        if self._vw.size:
            values[self._vw], temp_bad = self._vibrating_wire(raw[self._vw], reg_values, reg_ok)
            has_t = self._vw_temp >= 0
            self.raw_aux[self._vw[has_t]] = np.where(reg_ok[self._vw_temp[has_t]],
                                                     reg_values[self._vw_temp[has_t]], np.nan)
            quality[self._vw[temp_bad & (quality[self._vw] == Quality.GOOD)]] = Quality.DEVICE_FAULT
        with np.errstate(invalid="ignore"):
            implausible = (values < self._pl_min) | (values > self._pl_max)
        quality[implausible & (quality == Quality.GOOD)] = Quality.OUT_OF_RANGE
        values[quality != Quality.GOOD] = np.nan
        return values, quality

    def _vibrating_wire(self, freq: np.ndarray, reg_values: np.ndarray,
                        reg_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        modulus = freq * freq / 1000.0  # frequency modulus F = f^2 / 1000 (digits)
        has_t = self._vw_temp >= 0
        temp = np.where(has_t, reg_values[np.maximum(self._vw_temp, 0)], self._vw_t0)
        temp_bad = has_t & ~reg_ok[np.maximum(self._vw_temp, 0)]
        temp = np.where(temp_bad, self._vw_t0, temp)
        pressure = self._vw_k * (modulus - self._vw_f0) + self._vw_b * (temp - self._vw_t0)
        head = pressure / GRAVITY_KPA_PER_M + self._vw_install
        out = np.where(self._vw_out == 0, pressure,
                       np.where(self._vw_out == 1, head, self._vw_mouth - head))
        return out, temp_bad


def _or_nan(v: float | None) -> float:
    return np.nan if v is None else float(v)


class RainWindow:
    """Rolling rainfall over `window` seconds from a cumulative counter, in 60 time buckets."""

    def __init__(self, point: str, window: float, wrap: float | None = None):
        self.point = point
        self.window = window
        self.wrap = wrap
        self.width = window / RAIN_BUCKETS
        self.buckets = np.zeros(RAIN_BUCKETS)
        self.bucket = None  # absolute index of the newest bucket
        self.last: float | None = None
        self.resets = 0
        self.reset: dict | None = None  # the reset the last update saw: {"from", "to"}

    def update(self, t: float, counter: float) -> float:
        increment = 0.0
        self.reset = None
        if self.last is not None:
            increment = counter - self.last
            if increment < 0:
                if self.wrap and -increment > self.wrap / 2:
                    increment += self.wrap  # the counter wrapped past its top
                else:
                    # cleared by an operator or reset by a power loss: the reading is the rain
                    # since then; the rain between the last read and the reset is lost
                    self.resets += 1
                    self.reset = {"from": self.last, "to": counter}
                    log.warning("%s: rain counter went back from %g to %g: cleared or reset by "
                                "a power loss", self.point, self.last, counter,
                                extra={"event": "counter_reset", "point": self.point})
                    increment = counter
        self.last = counter
        index = int(np.floor(t / self.width))
        if self.bucket is None:
            self.bucket = index
        elif index > self.bucket:
            # clear the buckets that slid out of the window since the last sample
            stale = min(index - self.bucket, RAIN_BUCKETS)
            for j in range(1, stale + 1):
                self.buckets[(self.bucket + j) % RAIN_BUCKETS] = 0.0
            self.bucket = index
        self.buckets[index % RAIN_BUCKETS] += increment
        return float(self.buckets.sum())
