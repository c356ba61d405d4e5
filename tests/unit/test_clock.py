"""The production clock notices a step of the wall clock and says from which time to which."""

from __future__ import annotations

import logging
import time

import pytest

from gateway.clock import SimClock, WallClock


class SteppedWallClock(WallClock):
    """The production clock with a settable step added to the wall time it reads (an NTP step
    moves CLOCK_REALTIME only; time.monotonic goes on)."""

    step = 0.0

    def _wall(self) -> float:
        return time.time() + self.step


@pytest.mark.parametrize("step", [-86400.0, -3600.0, 21600.0, 3 * 365 * 86400.0])
def test_a_step_is_counted_summed_and_logged_with_old_and_new_time(step: float, caplog) -> None:
    clock = SteppedWallClock()
    clock.now()
    clock.step = step
    with caplog.at_level(logging.WARNING, logger="minewatch.clock"):
        new = clock.now()
        clock.now()  # the step is reported once
    assert clock.jumps == 1 and clock.stepped == pytest.approx(step, abs=0.5)
    [rec] = [r for r in caplog.records if getattr(r, "event", "") == "clock_jump"]
    assert rec.jump_s == pytest.approx(step, abs=0.5)
    old_t = time.time()
    assert rec.new[:16] == time.strftime("%Y-%m-%dT%H:%M", time.gmtime(new))
    assert rec.old[:16] == time.strftime("%Y-%m-%dT%H:%M", time.gmtime(old_t))
    assert rec.old in rec.getMessage() and rec.new in rec.getMessage()


def test_small_wobble_is_no_step() -> None:
    clock = SteppedWallClock()
    clock.now()
    clock.step = 0.5  # NTP slews this much; below the 2 s threshold
    clock.now()
    assert clock.jumps == 0 and clock.stepped == 0.0


def test_simulated_time_never_steps() -> None:
    clock = SimClock(epoch=1.7e9, scale=60.0)
    clock.now()
    assert clock.jumps == 0 and clock.stepped == 0.0
