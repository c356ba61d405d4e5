"""A wall clock that can be stepped under a running process, as NTP or an operator steps it.

Put this folder on PYTHONPATH of a process and name a file in WALL_STEP_FILE: the process's
time.time and time.time_ns read the real wall clock plus the seconds written in that file (read
again every 50 ms of monotonic time), so the file can be rewritten while the process runs. The
monotonic clock is left alone, as an NTP step leaves CLOCK_MONOTONIC alone. libfaketime cannot
do this for Python 3.11: with FAKETIME_DONT_FAKE_MONOTONIC=1 every time.sleep fails with EINVAL
(clock_nanosleep on an absolute monotonic deadline), which kills paho's reconnect thread, and
without it the monotonic clock is stepped too.
"""

import os
import time

_path = os.environ.get("WALL_STEP_FILE")
if _path:
    _real_time, _real_ns, _mono = time.time, time.time_ns, time.monotonic
    _state = [0.0, -1.0]  # the step (s), when the file was read (monotonic s)

    def _step() -> float:
        m = _mono()
        if m - _state[1] > 0.05:
            _state[1] = m
            try:
                with open(_path) as f:
                    _state[0] = float(f.read().strip() or 0)
            except (OSError, ValueError):
                pass  # a file being rewritten: the step read before holds
        return _state[0]

    def _time() -> float:
        return _real_time() + _step()

    def _time_ns() -> int:
        return _real_ns() + int(_step() * 1e9)

    time.time = _time
    time.time_ns = _time_ns
