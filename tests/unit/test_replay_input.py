"""`minewatch replay` on what loggers really write: clocks that step back, GBK, BOMs, ';' and
tab, date-only and Excel times, missing markers and garbage rows (gateway/replay_input.py)."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gateway.cli import main
from gateway.replay_input import ReplayError, read_export

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 7, 20, 0, 0)


def _rows(n: int, step_s: float = 600.0, start: datetime = START) -> list[tuple[datetime, float]]:
    """A slowly rising level with a little noise, as a logger would sample it."""
    rng = np.random.default_rng(7)
    return [(start + timedelta(seconds=step_s * k), 1250.0 + 0.002 * k + rng.normal(0, 0.003))
            for k in range(n)]


def _write(path: Path, header: list[str], rows: list[list[str]], sep: str = ",",
           encoding: str = "utf-8") -> Path:
    lines = [sep.join(header)] + [sep.join(r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _replay(path: Path, tmp_path: Path, capsys, *extra: str) -> tuple[dict, str, list[dict]]:
    out, events = tmp_path / "graded.csv", tmp_path / "events.jsonl"
    rc = main(["replay", str(path), "--out", str(out), "--events", str(events), "--json",
               *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    graded = list(csv.DictReader(out.open(encoding="utf-8")))
    summary = json.loads(captured.out)
    assert len(graded) == summary["rows"]
    return summary, captured.err, graded


def test_a_clock_set_back_an_hour_once_gives_results_and_is_reported(tmp_path: Path,
                                                                     capsys) -> None:
    rows = _rows(300)
    stamps = [t for t, _ in rows]
    # at row 150 the logger's clock is corrected back by an hour and it keeps logging
    stamps[150:] = [t - timedelta(hours=1) for t in stamps[150:]]
    path = _write(tmp_path / "stepped.csv", ["time", "level"],
                  [[t.strftime("%Y-%m-%d %H:%M:%S"), f"{v:.3f}"] for t, (_, v) in
                   zip(stamps, rows, strict=True)])
    summary, err, graded = _replay(path, tmp_path, capsys, "--quantity", "water_level")
    report = summary["input"]
    # rows 150..154 now fall before row 149, already read: dropped; row 155 repeats row 149's
    # time and is merged into it; the rest goes on
    assert (report["step_backs"], report["stepped_back_rows"], report["duplicates"]) == (1, 5, 1)
    assert summary["rows"] == 300 - 6
    assert "the time stepped back 1 time(s); 5 row(s)" in err and "line 152: 2026-07-21 00:50:00+08:00 -> 2026-07-21 00:00:00+08:00 (3000 s back)" in err
    times = [datetime.fromisoformat(r["timestamp"]) for r in graded]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))


def test_a_dst_fall_back_hour_is_read_as_its_second_pass(tmp_path: Path) -> None:
    # a logger on Central European time writes 02:00 .. 02:50 twice on 2026-10-25
    berlin = ZoneInfo("Europe/Berlin")
    utc = [datetime(2026, 10, 24, 23, 0, tzinfo=ZoneInfo("UTC")) + timedelta(minutes=10 * k)
           for k in range(24)]
    path = _write(tmp_path / "dst.csv", ["Zeit", "Pegel"],
                  [[u.astimezone(berlin).strftime("%Y-%m-%d %H:%M"), "1.0"] for u in utc])
    t, _, _, report = read_export(path, tz=berlin)
    assert report.dst_repeats == 6 and report.step_backs == 0 and report.rows == 24
    assert np.all(np.diff(t) == 600.0)


def test_a_gbk_file_with_chinese_column_names_gives_results(tmp_path: Path, capsys) -> None:
    rows = _rows(200)
    path = _write(tmp_path / "gbk.csv", ["时间", "库水位", "浸润线埋深"],
                  [[t.strftime("%Y/%m/%d %H:%M:%S"), f"{v:.3f}", "12.5"] for t, v in rows],
                  encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8
    summary, _, graded = _replay(path, tmp_path, capsys, "--quantity", "water_level",
                                 "--columns", "库水位")
    assert summary["input"]["encoding"] == "gb18030" and summary["rows"] == 200
    assert {"库水位", "库水位_score", "库水位_grade"} <= set(graded[0])
    assert float(graded[0]["库水位"]) == pytest.approx(rows[0][1], abs=1e-3)


def test_utf8_with_bom_semicolons_and_decimal_commas(tmp_path: Path, capsys) -> None:
    rows = _rows(100)
    path = _write(tmp_path / "bom.csv", ["Time", "Level [m]"],
                  [[t.strftime("%Y-%m-%d %H:%M"), f"{v:.3f}".replace(".", ",")] for t, v in rows],
                  sep=";", encoding="utf-8-sig")
    summary, _, graded = _replay(path, tmp_path, capsys)
    report = summary["input"]
    assert (report["encoding"], report["separator"]) == ("utf-8 with BOM", ";")
    assert report["decimal_comma"] == 100 and report["bad_rows"] == 0
    assert float(graded[5]["Level [m]"]) == pytest.approx(rows[5][1], abs=1e-3)


def test_tab_separated_file_without_header_names_columns_by_position(tmp_path: Path) -> None:
    path = _write(tmp_path / "logger.txt", [], [], sep="\t")  # replaced below
    lines = [f"{t:%Y-%m-%d %H:%M:%S}\t{k}\t12.9\t{v:.3f}" for k, (t, v) in enumerate(_rows(50))]
    path.write_text("\n".join(lines) + "\n")
    t, names, x, report = read_export(path, columns=["3"], tz=SHANGHAI)
    assert (report.separator, report.header, names) == ("\t", False, ["3"])
    assert x.shape == (50, 1) and np.all(np.diff(t) == 600.0)
    with pytest.raises(ReplayError, match=r"no column\(s\) \['Level'\].*named by position"):
        read_export(path, columns=["Level"], tz=SHANGHAI)


@pytest.mark.parametrize("form", ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%Y%m%d"])
def test_date_only_timestamps_give_daily_rows(tmp_path: Path, form: str) -> None:
    days = [datetime(2016, 1, 12) + timedelta(days=k) for k in range(40)]
    path = _write(tmp_path / "daily.csv", ["date", "gnss_cum_disp_mm"],
                  [[d.strftime(form), f"{0.3 * k:.2f}"] for k, d in enumerate(days)])
    t, _, x, report = read_export(path, tz=SHANGHAI)
    assert report.rows == 40 and report.period_s == 86400.0
    assert t[0] == datetime(2016, 1, 12, tzinfo=SHANGHAI).timestamp()


def test_excel_times_and_us_dates(tmp_path: Path) -> None:
    serial = _write(tmp_path / "serial.csv", ["date", "v"],
                    [[f"{42381 + k / 24:.6f}", "1"] for k in range(48)])  # 2016-01-12, hourly
    t, _, _, report = read_export(serial, tz="UTC")
    assert report.time_form == "excel serial days"
    assert t[0] == datetime(2016, 1, 12, tzinfo=ZoneInfo("UTC")).timestamp()
    assert np.allclose(np.diff(t), 3600.0, atol=1e-3)
    us = _write(tmp_path / "us.csv", ["date", "v"],
                [["1/12/2016 1:30 PM", "1"], ["1/13/2016 1:30 PM", "2"]])
    t, _, _, report = read_export(us, tz="UTC")
    assert report.time_form == "month-first"
    assert t[0] == datetime(2016, 1, 12, 13, 30, tzinfo=ZoneInfo("UTC")).timestamp()


def test_a_garbage_row_in_the_middle_is_skipped_named_and_the_rest_replayed(tmp_path: Path,
                                                                            capsys) -> None:
    rows = [[t.strftime("%Y-%m-%d %H:%M:%S"), f"{v:.3f}", "20.1"] for t, v in _rows(120)]
    rows[60] = ["2026-07-20 10:00:00", "1250.1\x00\x13#$", "20.1"]  # a power cut mid-write
    rows[61] = ["2026-07-20 10:1", ""]  # and the torn line after it
    path = _write(tmp_path / "garbage.csv", ["time", "level", "temp"], rows)
    summary, err, graded = _replay(path, tmp_path, capsys)
    report = summary["input"]
    assert report["bad_rows"] == 2 and summary["rows"] == 118
    assert "line 62: column 'level'" in err and "line 63:" in err


def test_missing_markers_sentinels_duplicates_and_newest_first(tmp_path: Path) -> None:
    markers = ["", "NaN", "null", "-", "--", "---", "N/A", "#N/A", "-9999", "1.5"]
    stamps = [START + timedelta(minutes=10 * k) for k in range(len(markers))]
    rows = [[f"{s:%Y-%m-%d %H:%M}", m] for s, m in zip(stamps, markers, strict=True)]
    rows.insert(1, [f"{stamps[0]:%Y-%m-%d %H:%M}", "7.0"])  # same time: fills the empty cell
    path = _write(tmp_path / "m.csv", ["time", "v"], rows[::-1])  # newest first
    _, _, x, report = read_export(path, tz=SHANGHAI)
    assert report.reversed and report.duplicates == 1
    assert x[0, 0] == 7.0 and np.isnan(x[1:8, 0]).all() and x[8, 0] == -9999.0
    _, _, x, _ = read_export(path, tz=SHANGHAI, missing=["-9999"])
    assert np.isnan(x[8, 0]) and x[9, 0] == 1.5


def test_the_cli_takes_a_named_separator_and_extra_missing_markers(tmp_path: Path,
                                                                   capsys) -> None:
    rows = [[f"{t:%Y-%m-%d %H:%M}", f"{v:.3f}"] for t, v in _rows(60)]
    rows[10][1] = "-99999"
    path = _write(tmp_path / "tab.txt", ["time", "level"], rows, sep="\t")
    summary, _, graded = _replay(path, tmp_path, capsys, "--sep", "tab", "--missing", "-99999")
    assert summary["input"]["separator"] == "\t" and summary["input"]["missing_cells"] == 1
    assert graded[10]["level"] == ""


def test_a_first_column_that_is_not_a_time_is_a_clear_error(tmp_path: Path) -> None:
    # the USGS rain files: "Y M D h m rain", the year alone in the first column
    path = tmp_path / "rain.txt"
    path.write_text("".join(f"2015 \t 08 \t 17 \t {h:02d} \t 15 \t 0\n" for h in range(20)))
    with pytest.raises(ReplayError, match=r"repeats the previous row's value on 19 of 20 rows"):
        read_export(path, tz=SHANGHAI)
