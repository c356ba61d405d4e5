"""State files are the gateway's own: the state directory is 0750 and what the daemon writes in
it (outbox, InfluxDB spool, detector checkpoints, the numba cache) 0640 at most.

The outbox holds every alert and fault event with the site's values, so it must not be
world-readable (issue 21 found the databases at 0644). The daemon sets its umask to 027, so
every file and folder it creates from then on (SQLite's -wal and -shm files included) is born
0640 / 0750; files left by an older version or another tool are tightened at start, with a log
line. Modes are only ever narrowed: a folder an operator made 0700 stays 0700.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from gateway.config.model import SiteConfig

__all__ = ["UMASK", "secure_state"]

log = logging.getLogger("minewatch.state")

UMASK = 0o027  # no write for the group, nothing for others


def secure_state(cfg: SiteConfig) -> None:
    """Create the state directory 0750, set the process umask, tighten what is already there."""
    os.umask(os.umask(UMASK) | UMASK)  # at least 027; a stricter umask (077) stays
    state_dir = cfg.gateway.state_dir
    state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    paths: list[Path] = [state_dir, *sorted(state_dir.rglob("*"))]
    # an outbox or spool configured outside the state directory is state all the same
    for db in (cfg.outbox.path, cfg.influx.spool_path if cfg.influx else None):
        if db is not None and state_dir not in db.parents:
            paths += [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal"))
                      if p.exists()]
    tightened = []
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue  # gone meanwhile
        if stat.S_ISLNK(st.st_mode):
            continue  # a link's target is not ours to change
        mode = stat.S_IMODE(st.st_mode)
        narrowed = mode & ~UMASK if stat.S_ISDIR(st.st_mode) else mode & ~UMASK & ~0o111
        if narrowed != mode:
            try:
                path.chmod(narrowed)
            except OSError as exc:
                log.warning("cannot tighten %s (%o): %s", path, mode, exc.strerror or exc,
                            extra={"event": "state_mode_failed", "path": str(path)})
                continue
            tightened.append(f"{path} {mode:o}->{narrowed:o}")
    if tightened:
        log.warning("state files were readable beyond the gateway's group: tightened %d (%s%s)",
                    len(tightened), ", ".join(tightened[:5]),
                    ", ..." if len(tightened) > 5 else "",
                    extra={"event": "state_modes_tightened", "count": len(tightened)})
