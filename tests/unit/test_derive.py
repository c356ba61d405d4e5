"""Values that need another device's reading: the barometric correction of vibrating-wire
piezometers (docs/requirements.md R11) and formula points, with staleness when the other device is silent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.base import Quality
from gateway.batch import Batch
from gateway.config import load_site
from gateway.derive import FormulaPoints
from tests.support.sites import example_site

BAROMETER = """
[[devices]]
name = "met_station"
bus = "dtu"
unit = 3
profile = "analog_input_64ch"
period = "10min"
abnormal_period = "5min"

[[points]]
name = "BARO-01"
quantity = "barometric_pressure"
unit = "kPa"
device = "met_station"
channel = "ai1"
"""


def _site(tmp: Path, correction: str) -> Path:
    path = example_site(tmp, modbus_port=5020, mqtt_port=1883, replace={
        'temperature_channel = "temp_ch1", ': f'temperature_channel = "temp_ch1", {correction}'})
    text = path.read_text().replace("[uplink.mqtt]", BAROMETER + "\n[uplink.mqtt]")
    path.write_text(text)
    return path


def _batch(cfg, t: float, values: dict[str, float]) -> Batch:
    index = {p.name: p.index for p in cfg.points}
    idx = np.array([index[name] for name in values], dtype=np.int64)
    return Batch("d", t, idx, np.array(list(values.values()), dtype=np.float64),
                 np.zeros(len(values), dtype=np.uint8))


def test_phreatic_depth_is_corrected_by_the_barometer(tmp_path: Path) -> None:
    cfg = load_site(_site(tmp_path, 'barometer = "BARO-01", q0 = 101.3, '))
    f = FormulaPoints(cfg)
    f.update(_batch(cfg, 1000.0, {"BARO-01": 100.5}))
    out = f.correct(_batch(cfg, 1060.0, {"JRX-01": 12.0, "JRX-02": 13.0}))
    # P rises by (q0 - Q) = 0.8 kPa -> the head 0.8/9.81 m higher -> the depth that much smaller
    assert out.values.tolist() == pytest.approx([12.0 - 0.8 / 9.81, 13.0])
    assert out.quality.tolist() == [Quality.GOOD, Quality.GOOD]


def test_a_barometer_read_in_the_same_poll_counts(tmp_path: Path) -> None:
    cfg = load_site(_site(tmp_path, 'barometer = "BARO-01", q0 = 101.3, barometer_sign = -1, '))
    f = FormulaPoints(cfg)
    out = f.correct(_batch(cfg, 10.0, {"BARO-01": 102.3, "JRX-01": 12.0}))
    assert out.values.tolist() == pytest.approx([102.3, 12.0 - 1.0 / 9.81])  # sign -1


def test_a_silent_barometer_makes_the_corrected_point_stale_not_wrong(tmp_path: Path) -> None:
    cfg = load_site(_site(tmp_path, 'barometer = "BARO-01", q0 = 101.3, '
                                    'barometer_max_age = "30min", '))
    f = FormulaPoints(cfg)
    never = f.correct(_batch(cfg, 0.0, {"JRX-01": 12.0}))
    assert never.quality.tolist() == [Quality.STALE] and never.values.tolist() == [12.0]
    f.update(_batch(cfg, 0.0, {"BARO-01": 100.0}))
    assert f.correct(_batch(cfg, 1799.0, {"JRX-01": 12.0})).quality.tolist() == [Quality.GOOD]
    assert f.correct(_batch(cfg, 1801.0, {"JRX-01": 12.0})).quality.tolist() == [Quality.STALE]
