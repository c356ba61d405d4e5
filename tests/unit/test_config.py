"""Site config loading: a good example loads with what it means; the CLI commands over a config.

Every kind of mistake, named with file, line and key: the cases of tests/cases/ (test_cases.py).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import ConfigError, load_site, parse_duration

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "config" / "examples" / "tailings_pond.toml"


def _problems(path: Path) -> list:
    with pytest.raises(ConfigError) as info:
        load_site(path)
    return info.value.problems


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "site.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_example_loads_with_directions_and_restore_levels() -> None:
    cfg = load_site(EXAMPLE)
    wl, p1 = cfg.points[0], cfg.points[1]
    assert (wl.quantity, wl.thresholds.direction) == ("water_level", "upper")
    assert wl.thresholds.upper.thresholds == (1253.0, 1254.0, 1255.0, 1256.0)
    # default deadband: 2 % of the threshold, capped at a quarter of the 1 m gap between levels
    assert wl.thresholds.upper.restore == pytest.approx((1252.75, 1253.75, 1254.75, 1255.75))
    assert (p1.quantity, p1.thresholds.direction) == ("phreatic_depth", "lower")
    assert p1.thresholds.lower.thresholds == (11.0, 10.0, 8.8, 8.0)
    assert all(r > t for r, t in zip(p1.thresholds.lower.restore, p1.thresholds.lower.thresholds,
                                     strict=True))
    assert cfg.device("radar_wl1").period == 600 and cfg.device("radar_wl1").abnormal_period == 300
    assert cfg.devices[0].profile.register("empty_height").wire_address == 1


def test_both_direction_for_oxygen(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8") + """
[[points]]
name = "O2-01"
quantity = "o2"
device = "radar_wl1"
channel = "level"
[points.thresholds]
direction = "both"
lower = { blue = 20.5, orange = 20.0, red = 19.5 }
upper = { yellow = 23.5 }
"""
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    o2 = load_site(path).points[-1]
    assert o2.thresholds.direction == "both"
    assert o2.thresholds.lower.thresholds[0] == 20.5 and math.isnan(o2.thresholds.lower.thresholds[1])
    assert o2.thresholds.upper.thresholds[1] == 23.5


def test_durations() -> None:
    assert parse_duration("10min") == 600 and parse_duration("1h") == 3600
    assert parse_duration("500ms") == 0.5 and parse_duration(30) == 30.0
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_run_with_bad_config_exits_2_naming_file_and_key(tmp_path: Path, capsys) -> None:
    path = _variant(tmp_path, "yellow = 1254.0", "yellow = 1256.5")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "points[0].thresholds.orange" in err


def test_validate_command(capsys) -> None:
    # what it prints for a bad file: tests/cases/ (tests/unit/test_cases.py)
    assert main(["config", "validate", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


def test_threshold_change_between_runs_is_in_the_audit_log(tmp_path: Path, capsys) -> None:
    from gateway.clock import SimClock
    from gateway.daemon import Gateway

    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'state_dir = "../../state/tailings_pond"', f'state_dir = "{tmp_path / "state"}"')
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    Gateway(load_site(path), SimClock(0.0, 1.0)).outbox.close()
    path.write_text(text.replace("red = 1256.0", "red = 1255.8"), encoding="utf-8")
    Gateway(load_site(path), SimClock(0.0, 1.0)).outbox.close()
    assert main(["alerts", "list", "--config", str(path), "--audit", "--json"]) == 0
    import json

    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["subject"] == "WL-01"
    assert entry["before"]["upper"]["thresholds"][3] == 1256.0
    assert entry["after"]["upper"]["thresholds"][3] == 1255.8


def test_device_plan_command(capsys) -> None:
    assert main(["device", "plan", "--config", str(EXAMPLE), "--json"]) == 0
    import json

    plans = {p["device"]: p for p in json.loads(capsys.readouterr().out)}
    # the VW logger's two frequencies and two temperatures: 4 registers, 2 requests (gap 14 > 8)
    vw = plans["vw_logger_a"]
    assert vw["naive_requests"] == 4 and len(vw["requests"]) == 2
    assert vw["requests"][0] == {"function_code": 3, "table": "holding", "address": 100,
                                 "count": 2, "registers": ["freq_ch1", "freq_ch2"]}
    assert main(["device", "plan", "--config", str(EXAMPLE), "radar_wl1"]) == 0
    assert "1 request(s) per poll" in capsys.readouterr().out
    assert main(["device", "plan", "--config", str(EXAMPLE), "nope"]) == 2


def test_formula_points_load_without_a_device(tmp_path: Path) -> None:
    # an undefined input: tests/cases/formula_input_not_defined
    text = EXAMPLE.read_text(encoding="utf-8") + """
[[points]]
name = "AQ-01"
quantity = "freeboard"
formula = { kind = "difference", minuend = "JRX-01", subtrahend = "WL-01" }
"""
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    aq = load_site(path).points[3]
    assert aq.formula.inputs == ("JRX-01", "WL-01") and aq.formula.max_age == 3600.0
    assert aq.device == "" and aq.channel == ""


def test_config_show_marks_defaults_and_profile_values(capsys) -> None:
    assert main(["config", "show", str(EXAMPLE), "--json"]) == 0
    import json

    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["devices[0].period"] == {"key": "devices[0].period", "value": 600.0,
                                         "source": "file"}
    assert rows["devices[0].degrade_after"]["source"] == "default"
    assert rows["devices[0].max_read"] == {"key": "devices[0].max_read", "value": 32,
                                           "source": "profile"}
    assert rows["points[0].thresholds.upper.restore"]["value"][3] == 1255.75
    # thresholds written inline as blue ... red are the file's, restore levels it leaves out not
    assert rows["points[0].thresholds.upper.thresholds"]["source"] == "file"
    assert rows["points[0].thresholds.upper.restore"]["source"] == "default"
    assert rows["points[0].thresholds.raise_samples"]["source"] == "default"


WL_THRESHOLDS = ('thresholds = { direction = "upper", blue = 1253.0, yellow = 1254.0, '
                 'orange = 1255.0, red = 1256.0 }\n')


def test_detector_parameters_per_point_over_quantity_defaults(tmp_path: Path) -> None:
    from gateway.detect import _params

    path = _variant(tmp_path, WL_THRESHOLDS, WL_THRESHOLDS + (
        '[points.detector.rate]\nbucket_s = "1h"\nlimits = [0.2, 0.3, 0.5, 1.0]\n'
        'restore = [0.15, 0.25, 0.4, 0.8]\nraise_hold = "30min"\n'))
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '\n[detector_defaults.water_level.rate]\nper_s = "1h"\n'
                    'bucket_s = "2h"\n', encoding="utf-8")
    cfg = load_site(path)
    wl = cfg.points[0]
    assert wl.params_of("rate") == {"bucket_s": 3600.0, "per_s": 3600.0, "raise_hold": 1800.0,
                                    "limits": (0.2, 0.3, 0.5, 1.0),
                                    "restore": (0.15, 0.25, 0.4, 0.8)}
    assert wl.params_of("stuck") == {}
    rate = _params("rate", cfg)
    assert rate.bucket_s[0] == 3600.0 and list(rate.limits[0]) == [0.2, 0.3, 0.5, 1.0]



def test_a_generic_point_with_levels_runs_the_threshold_detector_by_default(tmp_path: Path
                                                                            ) -> None:
    # `generic`'s defaults grade by the learned model; a site that gives levels wants them used
    path = _variant(tmp_path, 'quantity = "water_level"', 'quantity = "generic"')
    wl = load_site(path).points[0]
    assert wl.quantity == "generic" and wl.thresholds is not None
    assert "threshold" in wl.detectors and "generic" in wl.detectors


LISTEN = 'listen = "127.0.0.1:9108"                 # /metrics (Prometheus) and /status (minewatch status)'


@pytest.mark.parametrize("address", ["127.0.0.1:9108", "127.0.0.2:9108", "localhost:9108",
                                     "[::1]:9108"])
def test_a_loopback_status_endpoint_needs_nothing_more(tmp_path: Path, address: str) -> None:
    cfg = load_site(_variant(tmp_path, LISTEN, f'listen = "{address}"'))
    assert not cfg.gateway.listen_public and cfg.gateway.status_token_file is None


@pytest.mark.parametrize("address", ["0.0.0.0:9108", "192.168.1.20:9108", "gateway.local:9108"])
def test_a_public_status_endpoint_is_refused_unless_the_config_says_so(tmp_path: Path,
                                                                      address: str) -> None:
    (p,) = _problems(_variant(tmp_path, LISTEN, f'listen = "{address}"'))
    assert p.path == "gateway.listen" and "not a loopback address" in p.message
    assert "listen_public = true" in p.hint and "status_token_file" in p.hint
    assert p.line is not None


def test_a_public_status_endpoint_needs_a_token_file(tmp_path: Path) -> None:
    (p,) = _problems(_variant(tmp_path, LISTEN, 'listen = "0.0.0.0:9108"\nlisten_public = true'))
    assert p.path == "gateway.status_token_file" and "required" in p.message


def test_a_public_status_endpoint_with_its_token(tmp_path: Path) -> None:
    from gateway.status_http import read_token, status_url

    (tmp_path / "status.token").write_text("s3cret-token\n")
    cfg = load_site(_variant(tmp_path, LISTEN, 'listen = "0.0.0.0:9108"\nlisten_public = true\n'
                             'status_token_file = "status.token"'))
    assert cfg.gateway.listen == ("0.0.0.0", 9108) and cfg.gateway.listen_public
    assert read_token(cfg.gateway) == "s3cret-token"
    assert status_url(cfg.gateway) == "http://127.0.0.1:9108/status"  # asked on loopback


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("\n", "is empty")])
def test_an_unusable_token_file_is_named(tmp_path: Path, content: str | None,
                                         message: str) -> None:
    if content is not None:
        (tmp_path / "status.token").write_text(content)
    (p,) = _problems(_variant(tmp_path, LISTEN, LISTEN + '\nstatus_token_file = "status.token"'))
    assert p.path == "gateway.status_token_file" and message in p.message


def test_r3_derivations_where_the_config_gives_no_level(tmp_path: Path, capsys) -> None:
    import json

    # the phreatic line: orange = 1.1 x red (GB 51108-2015 §8.3.4) when only red is given
    path = _variant(tmp_path, WL_THRESHOLDS, WL_THRESHOLDS)
    text = path.read_text(encoding="utf-8").replace(
        'thresholds = { direction = "lower", blue = 11.0, yellow = 10.0, orange = 8.8, red = 8.0 }',
        'thresholds = { direction = "lower", blue = 11.0, yellow = 10.0, red = 8.0 }', 1)
    path.write_text(text, encoding="utf-8")
    cfg = load_site(path)
    jrx = next(p for p in cfg.points if p.quantity == "phreatic_depth")
    assert jrx.thresholds.lower.thresholds[2] == 8.8 and jrx.thresholds.derived_levels == (
        "orange",)
    assert main(["config", "show", str(path), "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[f"points[{jrx.index}].thresholds.derived_levels"] == {
        "key": f"points[{jrx.index}].thresholds.derived_levels", "value": ["orange"],
        "source": "derived"}


def test_a_mines_gas_points_are_armed_with_the_coal_mine_levels_when_none_are_set(
        tmp_path: Path) -> None:
    text = (ROOT / "config" / "examples" / "underground_mine.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^thresholds = .*$", "", text)  # a new site: no levels at all
    path = tmp_path / "mine.toml"
    path.write_text(text.replace('state_dir = "../../state/underground_mine"',
                                 f'state_dir = "{tmp_path / "state"}"'), encoding="utf-8")
    by = {p.quantity: p.thresholds for p in load_site(path).points}
    assert by["ch4"].derived and by["ch4"].upper.thresholds[2:] == (1.0, 1.5)
    assert by["ch4"].upper.thresholds[0] == 0.5 and math.isnan(by["ch4"].upper.thresholds[1])
    assert by["ch4"].upper.restore[3] == 1.0  # power back only below 1.0 %
    assert by["co"].upper.thresholds[2] == 24.0 and by["h2s"].upper.thresholds[2] == 6.6
    assert by["o2"].direction == "both" and by["o2"].lower.thresholds[3] == 19.5
