"""The simulator's models behave physically and stay pure functions of (seed, point, tick)."""

from __future__ import annotations

import numpy as np

from firmware_sim.physics import build_model, creep_displacement
from firmware_sim.process_physics import WATER_CP, WATER_DENSITY, briggs_sigmas, plume_ppm
from firmware_sim.scenario import _seconds, load_scenario

DAY = 86400.0
POND = {"level0": 1251.215, "pond_area": 2e5, "catchment_area": 2e6, "runoff_coefficient": 0.6,
        "base_inflow": 0.3, "decant_crest": 1251.0, "decant_coefficient": 3.0}


def _build(name: str, params: dict, duration: float = 10 * DAY, deps: dict | None = None):
    return build_model(name, params, duration, _seconds, deps or {})


def test_level_rises_with_inflow_and_recedes_through_the_decant() -> None:
    dry = _build("reservoir", POND)
    wet = _build("reservoir", {**POND, "rain": [["0h", 0], ["1d", 0], ["1d1h", 20],
                                                ["1d6h", 0], ["10d", 0]]})
    tau = np.arange(0.0, 10 * DAY, 3600.0)
    assert np.ptp(dry.truth(tau)) < 1e-3           # the slurry inflow balances the decant
    level = wet.truth(tau)
    assert np.ptp(level[:24]) < 1e-3                # before the storm: at rest
    storm = (tau > DAY) & (tau < DAY + 6 * 3600)
    assert np.all(np.diff(level[storm]) > 0)       # rain in: the level rises
    peak = int(np.argmax(level))
    assert level[peak] > POND["level0"] + 0.2
    assert np.all(np.diff(level[peak + 1:]) <= 0)  # afterwards the decant draws it down
    assert level[-1] - POND["level0"] < 0.1 * (level[peak] - POND["level0"])


def test_water_balance_volume_is_conserved() -> None:
    # no decant (crest far above): all the runoff stays in the pond
    params = {**POND, "base_inflow": 0.0, "decant_crest": 2000.0,
              "rain": [["0h", 0], ["2h", 10], ["4h", 0], ["10d", 0]]}
    level = _build("reservoir", params).truth(np.array([0.0, DAY]))
    rain_m = 0.5 * 10 * 4 / 1000.0  # triangle: 20 mm
    expected = rain_m * 0.6 * 2e6 / 2e5
    assert abs((level[1] - level[0]) - expected) < 1e-9


def test_phreatic_line_lags_the_level() -> None:
    level = _build("reservoir", {**POND, "rain": [["0h", 0], ["1d", 0], ["1d1h", 20],
                                                  ["1d6h", 0], ["10d", 0]]})
    depth = _build("phreatic", {"follows": "WL", "depth0": 13.0, "gain": 0.5, "lag": "1d"},
                   deps={"WL": level})
    tau = np.arange(0.0, 10 * DAY, 600.0)
    lv, dp = level.truth(tau), depth.truth(tau)
    assert abs(dp[0] - 13.0) < 1e-12
    assert np.argmin(dp) > np.argmax(lv) + 6     # the shallowest depth comes hours later
    assert dp.min() > 13.0 - 0.5 * (lv.max() - lv[0])  # attenuated by the lag
    # step response of the lag: 63 % after one time constant
    step = type(level)("step", np.array([0.0, 1.0, 20 * DAY]), np.array([0.0, 1.0, 1.0]))
    lagged = _build("phreatic", {"follows": "S", "depth0": 0.0, "gain": -1.0, "lag": "1d",
                                 "level_ref": 0.0}, 20 * DAY, {"S": step})
    assert abs(float(lagged.truth(DAY + 1.0)) - (1 - np.exp(-1))) < 1e-3


def test_beach_shrinks_as_the_level_rises() -> None:
    level = _build("reservoir", {**POND, "rain": [["0h", 0], ["1d", 0], ["1d1h", 20],
                                                  ["1d6h", 0], ["10d", 0]]})
    beach = _build("beach", {"follows": "WL", "beach_crest": 1258.0, "beach_slope": 0.01},
                   deps={"WL": level})
    tau = np.arange(0.0, 10 * DAY, 600.0)
    np.testing.assert_allclose(beach.truth(tau), (1258.0 - level.truth(tau)) / 0.01)
    assert np.argmin(beach.truth(tau)) == np.argmax(level.truth(tau))


def test_rainfall_is_the_integral_of_the_hyetograph() -> None:
    rain = _build("rainfall", {"rain": [["0h", 0], ["1h", 12], ["3h", 0], ["10d", 0]]})
    assert abs(float(rain.truth(3 * 3600.0)) - 18.0) < 1e-9
    assert np.all(np.diff(rain.truth(np.arange(0, 10 * DAY, 60.0))) >= 0)


def test_creep_inverse_velocity_recovers_the_failure_time() -> None:
    s = load_scenario("dam_creep")
    sig = s.signals["GP-01-X"]
    t_f = float(sig.params["t_f_s"])
    t_acc = float(sig.params["t_acc_s"])
    # velocity from the truth by central differences over the tertiary stage
    tau = np.linspace(t_acc + DAY, t_f - 3 * 3600.0, 200)
    h = 60.0
    v = (sig.truth(tau + h) - sig.truth(tau - h)) / (2 * h)
    slope, intercept = np.polyfit(tau, 1.0 / v, 1)
    # 1/v is linear to zero at t_f (the fading primary term bends it by well under 1 %)
    assert abs(-intercept / slope - t_f) < 3600.0
    pure = dict(primary=0.0, primary_time=DAY, velocity=0.5 / DAY, t_acc=8 * DAY, t_f=14 * DAY)
    v = (creep_displacement(tau + h, **pure) - creep_displacement(tau - h, **pure)) / (2 * h)
    slope, intercept = np.polyfit(tau, 1.0 / v, 1)
    assert abs(-intercept / slope - 14 * DAY) < 1.0
    # stage order: decelerating, steady, accelerating
    d = creep_displacement(np.array([0.0, 1e4, 2e4]), primary=2.0, primary_time=2 * DAY,
                           velocity=0.5 / DAY, t_acc=8 * DAY, t_f=14 * DAY)
    assert d[1] - d[0] > d[2] - d[1]
    v_mid = np.diff(sig.truth(np.array([5 * DAY, 5 * DAY + 3600, 6 * DAY, 6 * DAY + 3600])))
    assert abs(v_mid[0] - v_mid[2]) / v_mid[0] < 0.05
    late = np.diff(sig.truth(np.array([12 * DAY, 12 * DAY + 3600, 13 * DAY, 13 * DAY + 3600])))
    assert late[2] > 2 * late[0]


def test_oxygen_falls_as_methane_rises() -> None:
    s = load_scenario("gas_leak")
    tau = np.arange(0.0, s.duration, 60.0)
    ch4, co, o2 = (s.signals[k].truth(tau) for k in ("CH4-01", "CO-01", "O2-01"))
    np.testing.assert_allclose(o2, 20.9 * (1 - ch4 / 100 - co * 1e-6), rtol=0, atol=1e-9)
    rising = np.diff(ch4) > 1e-6
    assert rising.sum() > 60 and np.all(np.diff(o2)[rising & (np.abs(np.diff(co)) < 1e-9)] < 0)
    assert o2.min() < 20.6


def test_gas_event_shapes() -> None:
    base = {"mean": 0.0}
    step = _build("gas", {**base, "events": [{"shape": "step", "start": "1h", "size": 2.0}]}, DAY)
    ramp = _build("gas", {**base, "events": [{"shape": "ramp", "start": "1h", "rise": "2h",
                                              "size": 2.0}]}, DAY)
    plume = _build("gas", {**base, "events": [{"shape": "plume", "start": "1h", "rise": "1h",
                                               "size": 2.0, "decay": "1h"}]}, DAY)
    h = 3600.0
    assert step.truth(0.5 * h) == 0 and step.truth(1.5 * h) == 2.0
    assert abs(ramp.truth(2 * h) - 1.0) < 1e-12 and ramp.truth(5 * h) == 2.0
    assert abs(plume.truth(2 * h) - 2.0) < 1e-12
    assert abs(plume.truth(3 * h) - 2.0 * np.exp(-1)) < 1e-3


def test_values_are_pure_functions_of_the_tick() -> None:
    for name in ("rainstorm", "quiet_month", "faults_month", "dam_creep", "gas_leak",
                 "tank_overfill", "toxic_release", "cooling_water_loss"):
        s = load_scenario(name)
        t = s.epoch + np.arange(0.0, s.duration, s.duration / 97.0)
        for key in s.signals:
            whole = s.value(key, t)
            again = s.value(key, t[::-1])[::-1]
            singles = np.array([float(s.value(key, float(x))) for x in t])
            assert np.array_equal(whole, again, equal_nan=True) and np.array_equal(
                whole, singles, equal_nan=True), (name, key)
        fresh = load_scenario(name)
        key = next(iter(s.signals))
        assert np.array_equal(fresh.value(key, t), s.value(key, t), equal_nan=True)


def test_counter_reset_restarts_the_rain_counter(tmp_path) -> None:
    (tmp_path / "r.toml").write_text('''
[scenario]
name = "r"
site_config = "none.toml"
duration = "2d"
tick = "1min"
[signals.RG]
model = "rainfall"
rain = [["0h", 0], ["2h", 6], ["10h", 6], ["12h", 0], ["2d", 0]]
[[faults]]
kind = "counter_reset"
point = "RG"
start = "6h"
''')
    s = load_scenario(tmp_path / "r.toml")
    tau = np.array([5.0, 6.0, 8.0, 30.0]) * 3600.0
    got = s.value("RG", s.epoch + tau)
    truth = s.signals["RG"].truth(tau)
    assert got[0] == truth[0] and got[1] == 0.0
    np.testing.assert_allclose(got[2:], truth[2:] - truth[1])


def test_a_tank_stores_what_comes_in_and_overflows_at_its_rim() -> None:
    # 20 m across: 314.16 m²; 320 m³/h in for 2 h (pump ramps of a minute: 1 min less) is
    # 634.67 m³, 2.020 m
    tank = {"diameter": 20.0, "overflow": 15.8, "level0": 9.0,
            "inflow": [["0h", 0], ["1h", 0], ["1h1min", 320], ["3h", 320], ["3h1min", 0],
                       ["1d", 0]]}
    level = _build("tank", tank, DAY)
    area = np.pi * 20.0**2 / 4
    assert abs(float(level.truth(4 * 3600.0)) - (9.0 + 320.0 * 2.0 / area)) < 1e-9
    assert float(level.truth(10 * 3600.0)) == float(level.truth(4 * 3600.0))  # holds still
    # filled on and on it stops at the overflow, and a draw-down starts from there, not from
    # a level the tank never held
    over = _build("tank", {**tank, "inflow": [["0h", 320], ["10h", 320], ["10h1min", 0],
                                              ["1d", 0]],
                           "outflow": [["0h", 0], ["12h", 0], ["12h1min", 220], ["2d", 220]]},
                  2 * DAY)
    assert float(over.truth(9 * 3600.0)) == 15.8
    drawn = 220.0 * (1.0 - 30.0 / 3600.0)  # m³ in the first hour, the ramp's half minute less
    assert abs(float(over.truth(13 * 3600.0)) - (15.8 - drawn / area)) < 1e-9
    assert float(over.truth(2 * DAY)) == 0.0  # drawn empty, never below


def test_a_release_plume_reaches_each_detector_as_the_wind_carries_it() -> None:
    release = {"rate": 1.0, "start": "9h", "end": "9h40min", "wind_speed": 2.0,
               "stability": "D", "molar_mass": 17.031}
    near = _build("gaussian_plume", {**release, "downwind": 25.0}, DAY / 2)
    far = _build("gaussian_plume", {**release, "downwind": 80.0, "crosswind": 6.0}, DAY / 2)
    upwind = _build("gaussian_plume", {**release, "downwind": -30.0}, DAY / 2)
    h = 3600.0
    # nothing before the front arrives x/u after the release starts
    assert float(near.truth(9 * h + 12.0)) == 0.0 and float(near.truth(9 * h + 13.0)) > 0.0
    # the plateau is the ground-level plume: Q / (π u σy σz), the crosswind Gaussian off axis
    sy, sz = briggs_sigmas(25.0, "D")
    mg_m3 = 1000.0 / (np.pi * 2.0 * sy * sz)
    ppm_at_20c = mg_m3 * 8.314462618 * 293.15 / 101.325 / 17.031
    assert abs(float(near.truth(9.5 * h)) - ppm_at_20c) < 1e-9
    assert abs(float(far.truth(9.5 * h)) - plume_ppm(1.0, 2.0, 80.0, 6.0, "D", 17.031)) < 1e-9
    assert float(far.truth(9.5 * h)) < 0.1 * float(near.truth(9.5 * h))  # diluted on the way
    # the tail leaves x/u after the release stops; upwind nothing ever comes
    assert float(near.truth(9 * h + 40 * 60 + 12.0)) > 70.0
    assert float(near.truth(9 * h + 40 * 60 + 12.5 + 60.0)) == 0.0
    assert float(np.max(upwind.truth(np.arange(0.0, DAY / 2, 60.0)))) == 0.0
    # more unstable air spreads the plume: a lower concentration on the axis
    assert plume_ppm(1.0, 2.0, 25.0, 0.0, "B", 17.031) < plume_ppm(1.0, 2.0, 25.0, 0.0, "F",
                                                                     17.031)


def test_cooling_water_warms_by_the_heat_over_the_flow_with_a_lag() -> None:
    flow = _build("baseline", {"mean": 450.0, "events": [
        {"shape": "step", "start": "2h", "size": -340.0}]}, DAY)
    outlet = _build("cooling_outlet", {"follows": "F", "heat_load_kw": 5000.0, "lag": "10min",
                                       "mean": 35.0}, DAY, {"F": flow})
    rise = [5000.0 / (WATER_DENSITY * q / 3600.0 * WATER_CP) for q in (450.0, 110.0)]
    assert abs(float(outlet.truth(3600.0)) - (35.0 + rise[0])) < 1e-6  # P = ρ·Q·c_p·ΔT
    assert abs(float(outlet.truth(6 * 3600.0)) - (35.0 + rise[1])) < 1e-6
    # a first-order lag: 63 % of the way one time constant after the flow fell
    got = float(outlet.truth(2 * 3600.0 + 600.0)) - (35.0 + rise[0])
    assert abs(got / (rise[1] - rise[0]) - (1 - np.exp(-1))) < 0.02
