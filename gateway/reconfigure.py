"""Changing the running config: SIGHUP (`systemctl reload`), a config pushed by the platform
(`config` command), and the rollback of a pushed config that fails its probation.

Every path validates first and applies only a config without problems, the same way: the bus
tasks stop between polls, the detectors' state is carried over by point name, new thresholds go
to the audit log with who changed them, and the buses start again (new points are polled at
once). `[site]`, `[gateway]`, `[uplink.mqtt]`, `[storage.influx]`, `[outbox]` and `[commands]`
take a restart and are refused. A pushed config is written over the config file (atomically, so
the next SIGHUP or start reads it), the config it replaces is kept in `<state_dir>/config/`,
and it is on probation (`gateway/probation.py`) until it has reached its devices and broker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.config.model import SiteConfig
from gateway.probation import MAX_STARTS, Probation, write_atomically

if TYPE_CHECKING:
    from gateway.config.reader import Problem

__all__ = ["FIXED", "Reconfigure", "threshold_snapshot"]

log = logging.getLogger("minewatch.daemon")

FIXED = ("site", "gateway", "mqtt", "uplinks", "influx", "outbox", "commands")
_TABLE = {"mqtt": "uplink.mqtt", "uplinks": "uplink.mqtt", "influx": "storage.influx"}


class Reconfigure:
    """Mixed into `gateway.daemon.Gateway`."""

    cfg: SiteConfig
    probation: Probation | None
    busy: asyncio.Lock
    polling: bool  # the bus tasks run (a rollback at start comes before them)

    def refusals(self, new: SiteConfig) -> list[Problem]:
        """Why a valid config still cannot replace the running one without a restart."""
        from gateway.config.reader import Locator, Problem

        where = Locator(new.source)
        out = []
        for k in FIXED:
            if getattr(new, k) != getattr(self.cfg, k) and not (
                    k == "uplinks" and new.mqtt != self.cfg.mqtt):  # said once, not twice
                table = _TABLE.get(k, k)
                out.append(Problem(table, f"[{table}] changed, which takes a restart",
                                   where.line(table), "change it in the file and restart"))
        if _history_place(new) != _history_place(self.cfg):
            out.append(Problem("history", "[history] was switched on or off or moved, which "
                               "takes a restart", where.line("history"),
                               "change it in the file and restart"))
        try:
            self._check_scale(new)
        except ValueError as exc:
            out.append(Problem("devices", str(exc)))
        return out

    async def reload(self) -> bool:
        """SIGHUP: validate the config file again and apply it; a bad file changes nothing."""
        from gateway.config import ConfigError, load_site

        try:
            new = load_site(self.cfg.path)
        except ConfigError as exc:
            log.error("config reload rejected; the running config stays: %s", exc,
                      extra={"event": "reload_rejected"})
            return False
        refused = self.refusals(new)
        if refused:
            log.error("config reload rejected; the running config stays: %s",
                      "; ".join(p.render(new.path) for p in refused),
                      extra={"event": "reload_rejected"})
            return False
        if self.probation is not None:
            log.warning("the pushed config %s is no longer on probation: a reload replaced it",
                        self.probation.version, extra={"event": "probation_ended"})
            self.probation.close()
            self.probation = None
        await self.apply_config(new, "SIGHUP")
        return True

    async def apply_config(self, new: SiteConfig, by: str) -> None:
        async with self.busy:
            await self._stop_workers()
            self.checkpoint()
            self.telemetry.flush(self.clock.now())  # the open window's stats, for the history
            self._build(new, previous=self.detect, by=by)
            if self.polling:
                self._start_workers()
        self.reloads += 1
        log.info("config reloaded (%s, version %s): %d buses, %d devices, %d points", by,
                 new.version, len(new.buses), len(new.devices), len(new.points),
                 extra={"event": "reloaded", "by": by, "version": new.version})

    async def push_config(self, text: str, by: str, reason: str, command_id: str) -> dict:
        """The `config` command: validate `text` as the config file, write it, apply it and put
        it on probation. CommandError with the located problems when it is refused."""
        from gateway.commands.request import CommandError
        from gateway.config import ConfigError, load_site

        path = self.cfg.path
        try:
            new = load_site(path, text=text)
            problems = self.refusals(new)
        except ConfigError as exc:
            problems = exc.problems
        if problems:
            raise CommandError("invalid_config", f"{len(problems)} problem(s); the running "
                               f"config {self.cfg.version} stays",
                               problems=[_problem(p, path) for p in problems])
        previous = self.cfg
        if new.version == previous.version:
            return {"version": new.version, "previous": previous.version, "changed": False}
        good_text, good, required = previous.source, previous.version, [
            name for name, poller in self.pollers.items()
            if poller.stats.last_good is not None and poller.stats.consecutive_failures == 0]
        trial_text = self.probation.previous_text() if self.probation is not None else None
        if self.probation is not None and trial_text is not None:
            # the running config is itself on trial: the last good one is the one before it
            good_text, good, required = trial_text, self.probation.previous, \
                self.probation.required
        folder = self.cfg.gateway.state_dir / "config"
        try:
            trial = Probation.begin(folder, good_text, good, new.version, by,
                                    self.cfg.commands.config_probation, required,
                                    self.publisher is not None)
        except OSError as exc:
            raise CommandError("failed", f"cannot keep the running config in {folder} to roll "
                               f"back to: {exc.strerror or exc}; nothing changed") from None
        try:
            write_atomically(path, text)
        except OSError as exc:
            trial.close()
            raise CommandError("failed", f"cannot write {path}: {exc.strerror or exc}; the "
                               "daemon needs write access to the config file's folder "
                               "(docs/commands.md#config); nothing changed") from None
        if self.probation is not None:
            self.probation.close()
        self.probation = trial
        self._broker_seen = False  # reached again under the new config, not just before it
        await self.apply_config(new, by)
        audit = self.outbox.audit("config", str(path), previous.version, new.version, by,
                                  self.clock.now())
        log.warning("config %s pushed by %s (%s) replaces %s; on probation for %g s",
                    new.version, by, reason or "no reason given", previous.version,
                    trial.seconds, extra={"event": "config_pushed", "by": by,
                                          "version": new.version, "command_id": command_id})
        changed = [e["subject"] for e in self.threshold_changes]
        return {"version": new.version, "previous": previous.version, "changed": True,
                "thresholds_changed": changed, "probation_s": trial.seconds,
                "audited_at": audit["at"]}

    async def resume_probation(self) -> None:
        """At start, before polling: go on with the trial of a pushed config the gateway
        stopped under, or roll it back now when this is its third start (a crash loop)."""
        c = self.cfg
        self.probation = Probation.resume(c.gateway.state_dir / "config", c.version,
                                          c.commands.config_probation)
        if self.probation is None:
            return
        log.warning("config %s is still on probation (start %d under it)", c.version,
                    self.probation.starts, extra={"event": "probation_resumed"})
        if self.probation.starts >= MAX_STARTS:
            await self.probation_tick()

    async def probation_tick(self) -> None:
        """Every second while a pushed config is on trial: confirm it, or roll it back."""
        trial = self.probation
        if trial is None:
            return
        if self.publisher is not None and self.publisher.connected.is_set():
            self._broker_seen = True
        answered = {name for name, p in self.pollers.items() if p.stats.last_good is not None}
        verdict = trial.verdict(answered, [d.name for d in self.cfg.devices], self._broker_seen)
        if verdict is None:
            return
        self.probation = None
        trial.close()
        now = self.clock.now()
        if verdict == "confirmed":
            self.outbox.audit("config_confirmed", str(self.cfg.path), trial.previous,
                              trial.version, trial.by, now)
            log.info("config %s confirmed: its devices and broker answer", trial.version,
                     extra={"event": "config_confirmed", "version": trial.version})
            return
        await self._roll_back(trial, verdict, now)

    async def _roll_back(self, trial: Probation, why: str, now: float) -> None:
        from gateway.config import ConfigError, load_site

        text = trial.previous_text()
        try:
            if text is None:
                raise OSError(f"{trial.folder / (trial.previous + '.toml')} is gone")
            old = load_site(self.cfg.path, text=text)
            if self.refusals(old):
                raise ValueError("it differs in a section that takes a restart")
            write_atomically(self.cfg.path, text)
        except (OSError, ConfigError, ValueError) as exc:
            log.error("config %s failed its probation (%s) and cannot be rolled back to %s: %s",
                      trial.version, why, trial.previous, exc,
                      extra={"event": "rollback_failed", "version": trial.version})
            return
        self.last_rollback = {"version": trial.version, "to": trial.previous, "why": why,
                              "at": now}
        await self.apply_config(old, "rollback")
        self.outbox.audit("config_rollback", str(self.cfg.path), trial.version, trial.previous,
                          trial.by, now)
        log.error("config %s pushed by %s rolled back to %s: %s", trial.version, trial.by,
                  trial.previous, why, extra={"event": "config_rolled_back",
                                              "version": trial.version, "why": why})


def _problem(p: Problem, path) -> dict:
    out = {"path": p.path, "message": p.message, "line": p.line, "text": p.render(path)}
    if p.hint:
        out["hint"] = p.hint
    return out


def threshold_snapshot(cfg: SiteConfig) -> dict[str, dict]:
    """The thresholds in force, per point, as the audit log records them."""
    out = {}
    for p in cfg.points:
        th = p.thresholds
        if th is None:
            out[p.name] = None
            continue
        out[p.name] = {
            "direction": th.direction,
            **{side: {"thresholds": [None if v != v else v for v in ls.thresholds],
                      "restore": [None if v != v else round(v, 9) for v in ls.restore]}
               for side, ls in (("upper", th.upper), ("lower", th.lower)) if ls is not None},
            "debounce": th.raise_samples, "hold": th.raise_hold,
            "clear_samples": th.clear_samples, "clear_hold": th.clear_hold,
        }
    return out


def _history_place(cfg: SiteConfig) -> tuple:
    """What of `[history]` needs a restart: on or off, and its file (the cap follows a reload)."""
    h = cfg.history
    return (h.enabled, h.path) if h is not None else (False, None)
