"""A pushed config's probation: the verdict from what answered, the trial kept across a restart,
and a rollback at once on the third start under it."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.probation import MAX_STARTS, Probation, write_atomically


def _trial(tmp_path: Path, required: list[str], seconds: float = 60.0) -> Probation:
    return Probation.begin(tmp_path / "config", "old = 1\n", "aaaa", "bbbb", "李工", seconds,
                           required, needs_broker=True)


def test_confirmed_once_the_devices_that_answered_before_answer_again(tmp_path: Path) -> None:
    trial = _trial(tmp_path, ["radar_wl1", "vw_logger_a"])
    devices = ["radar_wl1", "vw_logger_a", "new_gauge"]
    assert trial.verdict({"radar_wl1"}, devices, broker_seen=True) is None  # still running
    assert trial.verdict({"radar_wl1", "vw_logger_a"}, devices, broker_seen=False) is None
    # a new device that never answered does not hold the config back
    assert trial.verdict({"radar_wl1", "vw_logger_a"}, devices, broker_seen=True) == "confirmed"


def test_at_the_deadline_it_says_why_it_fails(tmp_path: Path) -> None:
    trial = _trial(tmp_path, ["radar_wl1"], seconds=0.01)
    time.sleep(0.02)
    why = trial.verdict(set(), ["radar_wl1"], broker_seen=False)
    assert why == ("device(s) radar_wl1 answered before and not under it; the broker was not "
                   "reached within 0.01 s")
    none_before = _trial(tmp_path / "b", [], seconds=0.01)
    time.sleep(0.02)
    assert none_before.verdict(set(), ["radar_wl1"], True) == \
        "none of its devices answered within 0.01 s"


def test_the_trial_resumes_after_a_restart_and_rolls_back_on_the_third(tmp_path: Path) -> None:
    trial = _trial(tmp_path, ["radar_wl1"])
    assert trial.previous_text() == "old = 1\n"
    folder = tmp_path / "config"
    for start in range(2, MAX_STARTS + 1):
        again = Probation.resume(folder, "bbbb", 60.0)
        assert again is not None and again.starts == start and again.by == "李工"
    assert again.verdict({"radar_wl1"}, ["radar_wl1"], True) == \
        f"the gateway started {MAX_STARTS} times under it"
    # a file changed by hand since: the record is stale
    assert Probation.resume(folder, "cccc", 60.0) is None
    assert not (folder / "probation.json").exists()


def test_a_file_is_replaced_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("a = 1\n")
    path.chmod(0o640)
    write_atomically(path, "a = 2\n")
    assert path.read_text() == "a = 2\n" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["site.toml"]


def test_a_push_during_a_trial_keeps_the_last_good_config_to_roll_back_to(tmp_path: Path) -> None:
    import asyncio

    from gateway.clock import SimClock
    from gateway.config import load_site
    from gateway.config.patch import merge_patch
    from gateway.daemon import Gateway

    root = Path(__file__).resolve().parent.parent.parent
    text = (root / "config" / "examples" / "tailings_pond.toml").read_text(encoding="utf-8")
    site = tmp_path / "site.toml"
    site.write_text(text.replace('"../../state/tailings_pond"', '"state"')
                    + "\n[commands]\nenabled = true\n", encoding="utf-8")
    gw = Gateway(load_site(site), SimClock(1_784_476_800.0, 1.0))
    good, good_text = gw.cfg.version, gw.cfg.source

    def red(value: float) -> str:
        return merge_patch(gw.cfg.source, f'[[points]]\nname = "WL-01"\n'
                                          f'thresholds = {{ red = {value} }}\n')

    async def pushes() -> tuple[dict, dict]:
        first = await gw.push_config(red(1255.5), "李工", "", "c-1")
        second = await gw.push_config(red(1255.8), "王工", "", "c-2")
        return first, second

    first, second = asyncio.run(pushes())
    assert first["previous"] == good and second["previous"] == first["version"]
    assert gw.probation.previous == good  # not the first push, which was never confirmed
    assert gw.probation.previous_text() == good_text
    assert "red = 1255.8" in site.read_text()
    gw.outbox.close()
