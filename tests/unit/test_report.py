"""The monthly report's figures, page and command, on a month written the way the daemon and the
alert engine write it (tests/support/history.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gateway.cli import main
from gateway.report.coverage import offline_episodes, online_seconds, running_seconds
from gateway.report.figures import monthly_figures
from gateway.report.series import completeness
from tests.support.history import synthetic_month
from tests.support.sites import ROOT

SCHEMA = json.loads((ROOT / "config" / "schema" / "report.schema.json").read_text())
HOUR, DAY = 3600.0, 86400.0


@pytest.fixture
def june(tmp_path: Path):
    return synthetic_month(tmp_path)


def test_figures_of_a_month_from_the_store_and_the_alert_log(june) -> None:
    cfg, month = june
    doc = monthly_figures(cfg, month, now=month.end + 600)
    jsonschema.validate(doc, SCHEMA)
    (ep,) = doc["episodes"]
    assert (ep["point"], ep["highest_level"], ep["source"]) == ("WL-01", "yellow", "automatic")
    assert ep["seconds_at_or_above"] == {"blue": DAY, "yellow": 2 * HOUR, "orange": 0.0,
                                         "red": 0.0}
    # the acknowledgement is the alert log's `acknowledged` row of the episode
    assert ep["acknowledged_by"] == "值班员李" and ep["ack_after_s"] == 1800.0
    assert ep["cleared_after_s"] == DAY and not ep["open"]
    grades = doc["summary"]["episodes_by_grade"]
    assert grades["yellow"] == {"episodes": 1, "reached": 1, "seconds": 2 * HOUR}
    assert grades["blue"] == {"episodes": 0, "reached": 1, "seconds": DAY}
    assert doc["summary"]["median_ack_s"] == 1800.0 and doc["summary"]["acknowledged"] == 1
    # the fault counts from its first bad poll (`since`), not from the poll that raised it
    (fault,) = doc["faults"]
    assert fault["kind"] == "comm_fail" and fault["hours"] == 3.0
    assert doc["fault_hours"] == {"total": 3.0, "by_point": {"WL-01": 3.0},
                                  "by_kind": {"comm_fail": 3.0}}
    radar = next(d for d in doc["devices"] if d["device"] == "radar_wl1")
    assert radar["online_s"] == month.seconds - 3 * HOUR and radar["offline_episodes"] == 1
    assert doc["gateway_running"]["fraction"] == 1.0
    wl = next(p for p in doc["points"] if p["point"] == "WL-01")
    # 10-minute polls: 4320 slots, 18 without a good value
    assert wl["completeness"] == pytest.approx(1 - 18 / 4320)
    assert wl["exceedances"]["blue"] == {"episodes": 1, "seconds": DAY}
    assert wl["exceedances"]["yellow"] == {"episodes": 1, "seconds": 2 * HOUR}
    assert wl["max"] == pytest.approx(1254.2) and wl["trend_per_day"] > 0
    (reading,) = doc["manual_readings"]
    assert (reading["agrees"], reading["difference"], reading["by"]) == (False, 0.43, "张工")
    text = doc["summary"]["text"]
    assert "发生安全预警 1 次" in text["zh"] and "黄色 1 次" in text["zh"]
    assert "1 safety alert episode(s)" in text["en"] and "WL-01 disagreed" in text["en"]


def test_an_episode_across_the_months_end_counts_its_part_and_stays_open(june) -> None:
    cfg, month = june
    from gateway.outbox import Outbox
    from tests.support.history import event

    ob = Outbox(cfg.outbox.path)
    late = month.end - 2 * HOUR
    ob.commit_events([("t/alert", event("e2", "safety", "raised", "red", "JRX-01", late,
                                        late))], [])
    ob.close()
    doc = monthly_figures(cfg, month)
    ep = next(e for e in doc["episodes"] if e["alert_id"] == "e2")
    assert ep["open"] and ep["duration_s"] == 2 * HOUR and ep["cleared_after_s"] is None
    assert ep["seconds_at_or_above"]["red"] == 2 * HOUR and doc["summary"]["unacknowledged"] == 1


def test_online_time_across_runs_and_a_crash() -> None:
    runs = [(0.0, 100.0), (150.0, 200.0)]  # a crash at 100 (last sign of life), restart at 150
    states = [(1.0, True), (50.0, False), (60.0, True), (151.0, True)]
    assert running_seconds(runs, 0.0, 200.0) == 150.0
    assert online_seconds(runs, states, 0.0, 200.0) == 49.0 + 40.0 + 49.0
    assert offline_episodes(runs, states, 0.0, 200.0) == 1  # the gap is the gateway's, not its
    assert online_seconds(runs, states, 80.0, 160.0) == 20.0 + 9.0


def test_completeness_counts_poll_slots_not_samples() -> None:
    start = np.arange(0.0, 3600.0, 300.0)  # every window of an hour
    count = np.ones(start.size)  # 5-minute polls during an abnormal period: no extra credit
    assert completeness(start, count, 600.0, 3600.0) == 1.0
    count[[0, 1]] = 0  # a 10-minute slot without a good sample
    assert completeness(start, count, 600.0, 3600.0) == pytest.approx(5 / 6)
    fast = np.full(start.size, 30.0)  # 10-second polls: 30 a window
    fast[0] = 15
    assert completeness(start, fast, 10.0, 3600.0) == pytest.approx(1 - 0.5 / 12)


def test_report_page_and_json_through_the_command(june, tmp_path: Path, capsys) -> None:
    cfg, _ = june
    page = tmp_path / "r.html"
    assert main(["report", "monthly", "--config", str(cfg.path), "--month", "2026-06",
                 "--out", str(page)]) == 0
    text = page.read_text()
    assert text.count('<img class="plot"') == 3 and "<script" not in text
    assert "月度监测报告" in text and "值班员李" in text and "人工读数与自动监测" in text
    assert "已生成" in capsys.readouterr().err
    assert main(["report", "monthly", "--config", str(cfg.path), "--month", "2026-06",
                 "--lang", "en", "--max-plots", "1", "--out", str(page)]) == 0
    text = page.read_text()
    assert text.count('<img class="plot"') == 1 and "monthly monitoring report" in text
    assert "not plotted" in text
    assert main(["report", "monthly", "--config", str(cfg.path), "--month", "2026-06",
                 "--json"]) == 0
    jsonschema.validate(json.loads(capsys.readouterr().out), SCHEMA)


def test_a_bad_month_is_a_usage_error(june, capsys) -> None:
    cfg, _ = june
    assert main(["report", "monthly", "--config", str(cfg.path), "--month", "2026-6x"]) == 2
    assert "is not YYYY-MM" in capsys.readouterr().err


def test_a_month_without_data_reports_nothing_rather_than_failing(june) -> None:
    cfg, _ = june
    from gateway.report.period import parse_month

    doc = monthly_figures(cfg, parse_month("2025-01", __import__("zoneinfo").ZoneInfo(
        cfg.site.timezone)))
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["safety_episodes"] == 0 and doc["gateway_running"]["seconds"] == 0
    assert all(p["samples"] == 0 and p["completeness"] == 0.0 for p in doc["points"])


STALE_CACHE = """
import json, sys
from pathlib import Path
from matplotlib import font_manager as fm
from gateway.report.plots import _CJK
m = fm.fontManager
m.ttflist = [f for f in m.ttflist if not any(n in f.name for n in _CJK)]
fm.json_dump(m, str(Path(sys.argv[1]) / f"fontlist-v{fm.FontManager.__version__}.json"))
"""
FIND = """
from matplotlib import font_manager as fm
from gateway.report.plots import _CJK, _cjk_font
print(any(any(n in f.name for n in _CJK) for f in fm.fontManager.ttflist), _cjk_font(fm))
"""


def test_a_cjk_font_installed_after_matplotlibs_font_cache_still_labels_the_plots(
        tmp_path: Path) -> None:
    """matplotlib never rescans fonts once its cache exists; a site that installs the CJK font
    the README asks for, after a first report, must still get Chinese plot labels."""
    from tests.support.services import require_file

    require_file("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "fonts-wqy-microhei")
    cache = tmp_path / "mpl"
    cache.mkdir()
    env = {**__import__("os").environ, "MPLCONFIGDIR": str(cache)}
    # a cache written before the font was there: the font's entries taken out of a real one
    subprocess.run([sys.executable, "-c", STALE_CACHE, str(cache)], env=env, cwd=ROOT,
                   check=True)
    out = subprocess.run([sys.executable, "-c", FIND], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split(maxsplit=1)
    assert out[0] == "False"  # matplotlib itself does not see the font
    assert out[1].strip() == "WenQuanYi Micro Hei"  # the report finds it


def test_the_daemon_and_the_figures_never_import_matplotlib(june) -> None:
    cfg, _ = june
    probe = ("import sys\nimport gateway.daemon, gateway.report.publish\n"
             "from gateway.config import load_site\nfrom gateway.report.figures import "
             "monthly_figures\nfrom gateway.report.period import parse_month\n"
             "from zoneinfo import ZoneInfo\n"
             f"cfg = load_site({str(cfg.path)!r})\n"
             "monthly_figures(cfg, parse_month('2026-06', ZoneInfo(cfg.site.timezone)))\n"
             "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_daemon_publishes_each_finished_month_once(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from gateway.clock import SimClock
    from gateway.daemon import Gateway
    from tests.support.history import site_in

    cfg = site_in(tmp_path)
    may_end = 1_780_243_200.0  # 2026-06-01 00:00 +08:00
    gw = Gateway(cfg, SimClock(may_end - 86400, 1.0))
    gw.history.start(may_end - 86400)  # the gateway ran at the end of May
    gw.history.stop(may_end - 3600)
    gw = Gateway(cfg, SimClock(may_end, 1.0))

    async def ticks(now: float, n: int = 50) -> None:
        for _ in range(n):
            gw.reports._checked = float("-inf")
            gw.reports.tick(now)
            await asyncio.sleep(0.02)

    asyncio.run(ticks(may_end + 300))  # within the grace: the month's last window may be open
    assert gw.reports.published == []
    asyncio.run(ticks(may_end + 900))
    asyncio.run(ticks(may_end + 2000))  # ... and once only
    assert gw.reports.published == ["2026-05"]
    db = sqlite3.connect(cfg.outbox.path)
    rows = db.execute("SELECT topic, payload, priority, seq FROM outbox").fetchall()
    db.close()
    (topic, payload, priority, seq), = [r for r in rows if r[0].endswith("/report")]
    assert topic == "minewatch/v1/130825-TP001/gw01/report" and priority == 0 and seq is None
    doc = json.loads(payload)
    jsonschema.validate(doc, SCHEMA)
    assert doc["month"] == "2026-05" and doc["gateway_running"]["seconds"] == 86400 - 3600
    gw.history.stop(may_end + 2000)
    gw.outbox.close()
    # a restart does not publish it again; a month without a run has nothing to report
    gw = Gateway(cfg, SimClock(may_end + 40 * 86400, 1.0))
    asyncio.run(ticks(may_end + 40 * 86400))
    assert gw.reports.published == [] and gw.reports.due(may_end + 40 * 86400) is None
    gw.history.stop(may_end + 40 * 86400)
    gw.outbox.close()
