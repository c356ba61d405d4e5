"""A pushed config on probation: it must reach its devices and its broker in its first minutes,
or it is rolled back to the config that ran before it (docs/commands.md#config).

The trial ends well when every device that answered under the previous config has answered
under the new one (at least one device when none had), and the uplink has been connected, both
within `[commands] config_probation` real seconds; otherwise the verdict is a rollback, with the
reason. The trial is written to `<state_dir>/config/probation.json`, with the previous config's
text beside it (`<version>.toml`), so a gateway that stops or crashes under a new config resumes
the trial when it starts, and rolls back at once on its third start under it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["MAX_STARTS", "Probation", "write_atomically"]

log = logging.getLogger("minewatch.config")

MAX_STARTS = 3
KEEP = 20  # previous configs kept in <state_dir>/config


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves the old file or the new one, never half;
    the file keeps its mode. OSError when the folder or the file refuses."""
    tmp = path.with_name(f".{path.name}.new")
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o640
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class Probation:
    folder: Path  # <state_dir>/config
    version: str
    previous: str  # the version rolled back to
    by: str
    seconds: float
    required: list[str] = field(default_factory=list)  # devices that must answer again
    needs_broker: bool = True
    starts: int = 1
    started: float = field(default_factory=time.monotonic)  # real time, this process

    # -- persistence ---------------------------------------------------------------------------
    @classmethod
    def begin(cls, folder: Path, previous_text: str, previous: str, version: str, by: str,
              seconds: float, required: list[str], needs_broker: bool) -> Probation:
        """Keep the previous config and start the trial; OSError when the state directory
        refuses (then nothing may be applied: there would be nothing to roll back to)."""
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / f"{previous}.toml", previous_text)
        trial = cls(folder, version, previous, by, seconds, sorted(required), needs_broker)
        trial.save()
        kept = sorted(folder.glob("*.toml"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-KEEP]:
            with contextlib.suppress(OSError):
                old.unlink()
        return trial

    def save(self) -> None:
        doc = {k: v for k, v in asdict(self).items() if k not in ("folder", "started")}
        write_atomically(self.folder / "probation.json", json.dumps(doc, indent=1))

    @classmethod
    def resume(cls, folder: Path, version: str, seconds: float) -> Probation | None:
        """The trial of the config now starting, if one was under way when the gateway last
        stopped (another version's record is stale: the file was changed by hand)."""
        path = folder / "probation.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if doc.get("version") != version:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        trial = cls(folder, version, doc["previous"], doc.get("by", "?"), seconds, [],
                    bool(doc.get("needs_broker", True)), int(doc.get("starts", 1)) + 1)
        with contextlib.suppress(OSError):
            trial.save()
        return trial

    def previous_text(self) -> str | None:
        try:
            return (self.folder / f"{self.previous}.toml").read_text(encoding="utf-8")
        except OSError:
            return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            (self.folder / "probation.json").unlink()

    # -- the verdict ---------------------------------------------------------------------------
    def verdict(self, answered: set[str], devices: list[str], broker_seen: bool) -> str | None:
        """None while the trial runs; "confirmed"; or the reason for a rollback."""
        if self.starts >= MAX_STARTS:
            return f"the gateway started {self.starts} times under it"
        missing = [d for d in self.required if d in devices and d not in answered]
        reached = not missing and (bool(answered) or not devices or bool(self.required))
        if reached and (broker_seen or not self.needs_broker):
            return "confirmed"
        if time.monotonic() - self.started < self.seconds:
            return None
        why = []
        if missing:
            why.append(f"device(s) {', '.join(missing)} answered before and not under it")
        elif not reached:
            why.append("none of its devices answered")
        if self.needs_broker and not broker_seen:
            why.append("the broker was not reached")
        return f"{'; '.join(why)} within {self.seconds:g} s"
