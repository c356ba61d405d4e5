"""R7's sampling advice as warnings with their clause (issue 15): a gas head polled slower than
AQ 6201's 10-second patrol cycle, a GNSS station slower than GB 51108's 30 minutes when abnormal,
a device polled faster than it makes values. Warnings, never errors: validate still exits 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.config import load_site
from gateway.sampling_rules import sampling_warnings

ROOT = Path(__file__).resolve().parent.parent.parent


def _site(tmp: Path, gas_period: str, gnss_abnormal: str) -> Path:
    text = (ROOT / "config" / "examples" / "underground_mine.toml").read_text(encoding="utf-8")
    text = text.replace('period = "10s"', f'period = "{gas_period}"', 1)
    text += f"""
[[buses]]
name = "gnss_tcp"
transport = "tcp"
host = "127.0.0.1"
port = 5030

[[devices]]
name = "gnss_gp1"
bus = "gnss_tcp"
unit = 1
profile = "gnss_monitor"
period = "1h"
abnormal_period = "{gnss_abnormal}"

[[points]]
name = "GP-01-X"
quantity = "gnss_disp"
unit = "mm"
device = "gnss_gp1"
channel = "disp_x"
"""
    path = tmp / "site.toml"
    path.write_text(text.replace('state_dir = "../../state/underground_mine"',
                                 f'state_dir = "{tmp / "state"}"'), encoding="utf-8")
    return path


def test_the_shipped_examples_follow_the_sampling_rules() -> None:
    for name in ("tailings_pond", "tailings_dam", "underground_mine"):
        assert sampling_warnings(load_site(ROOT / "config" / "examples" / f"{name}.toml")) == []


def test_a_slow_gas_head_and_a_slow_abnormal_gnss_period_are_warned_with_their_clause(
        tmp_path: Path) -> None:
    path = _site(tmp_path, "1h", "1h")
    warned = {(w.device, w.clause) for w in sampling_warnings(load_site(path))}
    assert ("ch4_face", "AQ 6201") in warned and ("gnss_gp1", "GB 51108-2015 §4.5.4") in warned
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "validate", str(path),
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr  # advice, not an error
    assert {w["clause"] for w in json.loads(run.stdout)["warnings"]} >= {"AQ 6201"}
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "validate", str(path),
                          "--lang", "en"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "warning: ch4_face: gas polled every 1 h, slower than the 10 s patrol cycle" \
        " (AQ 6201)" in run.stdout
