"""Inverse velocity (Fukuzono 1985): t_f recovered from noisy cumulative displacement."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.inverse_velocity import InverseVelocityDetector, InverseVelocityParams

DAY = 86400.0
T_F = 20.0  # days
V0 = 2.0  # mm/d at t = 0
A = 1.0 / (V0 * T_F)  # v = 1 / (A (t_f - t))


def displacement(days: np.ndarray) -> np.ndarray:
    """Cumulative displacement (mm) whose velocity is v = 1 / (A (t_f - t)).

    x(t) = integral_0^t dt' / (A (t_f - t')) = (1 / A) ln(t_f / (t_f - t)) = -(1 / A) ln(1 - t / t_f).
    """
    return -(1.0 / A) * np.log1p(-days / T_F)


def test_the_series_has_the_stated_velocity() -> None:
    days = np.linspace(0, 19, 2000)
    v = np.gradient(displacement(days), days)
    assert v[1:-1] == pytest.approx(1.0 / (A * (T_F - days[1:-1])), rel=1e-3)


def forecast(x: np.ndarray, days: np.ndarray):
    det = InverseVelocityDetector(InverseVelocityParams.defaults(1))
    return det.run(days * DAY, x[:, None])


def test_recovers_t_f_from_noisy_cumulative_displacement_at_gnss_cadence() -> None:
    # hourly GNSS solutions with 1 mm noise, watched until 1.5 days before the failure; the
    # stated tolerance: within 0.6 days each, within 0.25 days in the median of ten series
    days = np.arange(0, 18.5 * 24) / 24
    errors, sds = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        out = forecast(displacement(days) + rng.normal(0, 1.0, days.size), days)
        lead_s, r2, points, _, lead_sd_s, level_lead_s = out.evidence[-1, 0]
        assert r2 >= 0.8 and points >= 5  # published only then
        errors.append(days[-1] + lead_s / DAY - T_F)
        sds.append(lead_sd_s / DAY)
        assert int(out.grade[-1, 0]) == 3  # lead 1.5 d: orange (3 d) but not red (1 d)
        assert level_lead_s == 3 * DAY  # the limit an orange event quotes
    assert np.max(np.abs(errors)) < 0.6
    assert np.median(np.abs(errors)) < 0.25
    # the forecast's stated uncertainty is of the size of its real error, not a decoration
    assert 0.02 < np.median(sds) < 1.0


def test_noise_free_forecast_is_exact_within_the_velocity_lag() -> None:
    # velocities are secants over 24 h, so near the end 1/v comes out low by about
    # A h^2 / (3 T) (half-span h, T = t_f - t): about an hour at one day's lead
    days = np.arange(0, 19 * 24) / 24
    out = forecast(displacement(days), days)
    assert days[-1] + out.evidence[-1, 0, 0] / DAY == pytest.approx(T_F, abs=0.06)
    assert int(out.grade[-1, 0]) == 4  # lead 1 day: red


def test_steady_creep_publishes_no_forecast() -> None:
    days = np.arange(0, 30 * 24) / 24
    rng = np.random.default_rng(7)
    out = forecast(3.0 * days + rng.normal(0, 1.0, days.size), days)
    assert np.isnan(out.evidence[:, 0, 0]).mean() > 0.95
    assert not out.grade.any()


def test_few_points_or_a_poor_fit_publish_nothing() -> None:
    days = np.arange(0, 18 * 24) / 24
    p = InverseVelocityParams.defaults(1)
    p.min_r2[0] = 1.0  # no real fit reaches it
    det = InverseVelocityDetector(p)
    out = det.run(days * DAY, (displacement(days) + np.random.default_rng(1).normal(
        0, 1.0, days.size))[:, None])
    assert np.isnan(out.evidence[:, 0, 0]).all() and not out.grade.any()
    assert np.isfinite(out.evidence[-1, 0, 1])  # R^2 is still reported
    short = forecast(displacement(days[:40]), days[:40])  # under two days: too few velocities
    assert np.isnan(short.evidence[:, 0, 0]).all()


def test_parameters_are_checked() -> None:
    p = InverseVelocityParams.defaults(2)
    p.min_points[1] = 4
    with pytest.raises(ValueError, match="channel 1: min_points"):
        InverseVelocityDetector(p)
    p = InverseVelocityParams.defaults(2)
    p.lead[0] = [1.0, 2.0, 3.0, 4.0]  # ascending lead: wrong way round
    with pytest.raises(ValueError, match="channel 0: lead"):
        InverseVelocityDetector(p)
