"""R7's sampling rules as warnings: a period the standards advise against, with the clause.

Errors (a tailings item measured less than once a day, GB 51108-2015 §4.5.4) are the config
loader's; these are what a field engineer should see but may have reasons for: a gas head polled
slower than the 10-second patrol cycle of AQ 6201, a GNSS station whose abnormal period is
slower than the 30 minutes GB 51108-2015 §4.5.4 asks in the warning zone, a device polled faster
than it makes new values (docs/requirements.md R7). `config validate` prints them and the daemon
logs them once at start.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.cadence_notes import duration_text
from gateway.config.model import SiteConfig

__all__ = ["SamplingWarning", "sampling_warnings"]

GAS = frozenset({"ch4", "co", "h2s", "no2", "o2"})
GAS_PATROL_S = 10.0  # AQ 6201: the system's patrol cycle is at most 10 s
GNSS_ABNORMAL_S = 1800.0  # GB 51108-2015 §4.5.4: GNSS fast-static at least once per 30 min


@dataclass(frozen=True)
class SamplingWarning:
    device: str
    text: str
    clause: str

    def line(self) -> str:
        return f"{self.device}: {self.text} ({self.clause})"


def sampling_warnings(cfg: SiteConfig) -> list[SamplingWarning]:
    out = []
    for d in cfg.devices:
        quantities = {p.quantity for p in cfg.points if p.device == d.name}
        if quantities & GAS and d.period > GAS_PATROL_S:
            out.append(SamplingWarning(
                d.name, f"gas polled every {duration_text(d.period)}, slower than the "
                f"{GAS_PATROL_S:g} s patrol cycle", "AQ 6201"))
        if "gnss_disp" in quantities and d.abnormal_period > GNSS_ABNORMAL_S:
            out.append(SamplingWarning(
                d.name, f"abnormal period {duration_text(d.abnormal_period)}: a GNSS station in "
                "the warning zone is measured at least once per 30 min", "GB 51108-2015 §4.5.4"))
        update = d.profile.update_period
        if update > 0 and d.period < update:
            out.append(SamplingWarning(
                d.name, f"polled every {duration_text(d.period)} but it makes a new value every "
                f"{duration_text(update)}: the extra reads repeat it", "docs/requirements.md R7"))
    return out
