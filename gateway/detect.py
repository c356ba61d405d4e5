"""The detect stage: runs each point's detector set over every Batch and says each point's grade.

Each detector kind is one object over all the site's points (channel = point index), updated
with the subset of a batch's points that use it, so one kernel call per kind serves a batch. A
point's set is its config's `detectors`, else the registry's default for its quantity
(`detectors.registry`: e.g. threshold + rate + step + stuck for a water level). Their outputs are
combined by `gateway.verdict` (the highest grade names its detector and evidence, the most severe
fault merged into the sample's quality), the same rule replay uses. State is
checkpointed per detector so a restarted gateway continues where it stopped, and a reload carries
each detector's state over by point name.

Detectors run on their own time, which a step of the wall clock does not move: detector time =
wall time − `offset`, the sum of the steps since their state began (docs/contracts.md#clock). A
step back would otherwise make every window drop its samples as too old and hold every debounce
until the wall clock came back to where it was (a day after a step back of a day); a step forward
would close every window and hold time at once. The offset is checkpointed with the state, and a
restart on a wall clock behind the checkpoint (a site computer without an RTC battery) goes on from
the checkpoint's time.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from detectors.registry import (
    detector_class,
    jump_checks,
    params_class,
    rate_direction,
    stuck_min_s,
)
from detectors.threshold import ThresholdDetector, ThresholdParams
from gateway.batch import Batch
from gateway.config.model import SiteConfig
from gateway.verdict import Part, Verdict, combine, merge_quality

__all__ = ["DetectStage", "threshold_params"]

log = logging.getLogger("minewatch.detect")

_DIRECTION = {"upper": 1, "lower": -1, "both": 2}
# a restarted gateway whose first sample is this much older than the checkpoint's newest had its
# wall clock set back while it was down; less is the order of batches of different devices
_RESUME_SLACK_S = 60.0


def threshold_params(cfg: SiteConfig) -> ThresholdParams:
    """Threshold detector parameters, one channel per point, from the points' thresholds."""
    n = len(cfg.points)
    params = ThresholdParams.defaults(n)
    for p in cfg.points:
        i = p.index
        if p.plausible_min is not None:
            params.plausible_min[i] = p.plausible_min
        if p.plausible_max is not None:
            params.plausible_max[i] = p.plausible_max
        th = p.thresholds
        if th is None or "threshold" not in p.detectors:
            params.direction[i] = 1  # all levels NaN: never grades
            continue
        params.direction[i] = _DIRECTION[th.direction]
        if th.upper is not None:
            params.upper[i] = th.upper.thresholds
            params.upper_restore[i] = th.upper.restore
        if th.lower is not None:
            params.lower[i] = th.lower.thresholds
            params.lower_restore[i] = th.lower.restore
        params.raise_samples[i] = th.raise_samples
        params.raise_hold[i] = th.raise_hold
        params.clear_samples[i] = th.clear_samples
        params.clear_hold[i] = th.clear_hold
        params.red_immediate[i] = th.red_immediate
    params.validate()
    return params


def _params(name: str, cfg: SiteConfig):
    """Per-point parameters of one detector kind; the kernels' defaults where the config is
    silent (a rate detector without configured limits measures the rate and grades nothing)."""
    if name == "threshold":
        return threshold_params(cfg)
    params = params_class(name).defaults(len(cfg.points))
    if name == "stuck":
        for p in cfg.points:
            # what the quantity physically does: a pond level holds still for a day, rain comes
            # in bursts that are no spikes
            params.min_stuck_s[p.index] = stuck_min_s(p.quantity)
            if not jump_checks(p.quantity):
                params.jump_z[p.index] = np.inf
            if p.plausible_min is not None:
                params.plausible_min[p.index] = p.plausible_min
            if p.plausible_max is not None:
                params.plausible_max[p.index] = p.plausible_max
            if not p.device:
                continue
            device = cfg.device(p.device)
            # an unchanged value within the device's own update period is not stuck (a GNSS
            # solution arrives hourly however often it is polled)
            params.period_s[p.index] = max(device.profile.update_period, device.period)
    if name in ("rate", "tangent_angle", "inverse_velocity", "step"):
        for p in cfg.points:
            params.direction[p.index] = rate_direction(p.quantity)
    from gateway.config.detector_params import apply_detector_params

    for p in cfg.points:
        # the config's `[points.detector.<name>]` (over its quantity's defaults), checked by
        # the loader against the same validation
        apply_detector_params(params, p.index, p.params_of(name))
    params.validate()
    return params


def _warm_up(name: str, form: str) -> None:
    """Compile (or load from the numba cache) the kernel form in use now ("update": the live
    path, before the gateway says it is ready, since a first compile inside the poll loop would
    stall it for seconds; "block": replay), and only that form."""
    det = detector_class(name)(params_class(name).defaults(1))
    if form == "block":
        det.run(np.zeros(1), np.zeros((1, 1)))
    else:
        det.update(np.zeros(1, np.int64), 0.0, np.zeros(1), np.ones(1, np.bool_))


class DetectStage:
    def __init__(self, cfg: SiteConfig, checkpoint: Path | None = None, restore: bool = True,
                 form: str = "update"):
        self.cfg = cfg
        n = len(cfg.points)
        sets = [tuple(p.detectors) for p in cfg.points]
        self.detectors: dict[str, tuple[object, np.ndarray]] = {}
        for name in sorted({d for s in sets for d in s}):
            mask = np.array([name in s for s in sets], dtype=bool)
            params = _params(name, cfg)
            self.detectors[name] = (detector_class(name)(params), mask)
            _warm_up(name, form)
        self.threshold = self.detectors["threshold"][0] if "threshold" in self.detectors else \
            ThresholdDetector(ThresholdParams.defaults(n))
        self.checkpoint = checkpoint
        self._plans: dict[int, tuple[np.ndarray, list]] = {}
        self.offset = 0.0  # wall time − detector time (s): the wall clock's steps
        self.last_t = math.nan  # the newest detector time processed
        self._resumed = False  # restored from a checkpoint, no batch processed since
        if restore and checkpoint is not None and checkpoint.is_file():
            self._restore(checkpoint)

    # -- checkpoints -----------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        state = {f"{name}/{key}": arr for name, (det, _) in self.detectors.items()
                 for key, arr in det.state().items()}
        state["_clock/offset"] = np.float64(self.offset)
        state["_clock/last_t"] = np.float64(self.last_t)
        return state

    def _restore(self, path: Path) -> None:
        try:
            with np.load(path) as data:
                state = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            log.warning("detector checkpoint %s not used: %s", path, exc,
                        extra={"event": "detector_restore_failed"})
            return
        if "_clock/offset" in state:
            self.offset = float(state["_clock/offset"])
            self.last_t = float(state["_clock/last_t"])
            self._resumed = True
        for name, (det, _) in self.detectors.items():
            mine = {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith(name + "/")}
            try:
                det.load(mine)
            except (ValueError, KeyError) as exc:
                # a checkpoint of another site layout or version: start this detector fresh
                log.warning("%s state not restored from %s: %s", name, path, exc,
                            extra={"event": "detector_restore_failed", "detector": name})
        log.info("detector state restored from %s", path, extra={"event": "detector_restore"})

    def save(self) -> None:
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_suffix(".tmp.npz")
        try:
            np.savez(tmp, **self._state())
            tmp.replace(self.checkpoint)
        except OSError:
            tmp.unlink(missing_ok=True)  # a half-written file on a full disk helps nobody
            raise

    def transfer(self, old: DetectStage) -> None:
        """Carry detector state over a reload, point by point (points may be added, removed or
        reordered; a point's thresholds may change and its state is kept)."""
        self.offset, self.last_t, self._resumed = old.offset, old.last_t, old._resumed
        old_index = {p.name: p.index for p in old.cfg.points}
        pairs = [(p.index, old_index[p.name]) for p in self.cfg.points if p.name in old_index]
        if not pairs:
            return
        new_rows, old_rows = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
        for name, (det, _) in self.detectors.items():
            if name not in old.detectors:
                continue
            state = det.state()
            old_state = old.detectors[name][0].state()
            for key, arr in old_state.items():
                if key in state and arr.shape[0] == len(old.cfg.points):
                    state[key][new_rows] = arr[old_rows]
            det.load(state)

    def reconcile(self, committed_levels: np.ndarray) -> None:
        """After a crash the checkpoint may be older than the alert state the engine committed:
        where the threshold detector holds a lower grade than the engine published, seed it."""
        behind = np.flatnonzero(self.threshold.grade < committed_levels)
        if behind.size:
            self.threshold.seed_grades(behind, committed_levels[behind])
            log.warning("detector state of %d point(s) was behind the committed alert state; "
                        "seeded from it", behind.size, extra={"event": "detector_reconciled"})

    # -- time ------------------------------------------------------------------------------
    def clock_stepped(self, jump: float) -> None:
        """The wall clock was stepped by `jump` seconds: detector time goes on as it was."""
        self.offset += jump
        log.warning("detectors keep their time through the wall clock's step of %+.3f s "
                    "(detector time = wall time %+.3f s)", jump, -self.offset,
                    extra={"event": "detector_time_kept", "jump_s": jump,
                           "offset_s": self.offset})

    def _detector_time(self, wall: float) -> float:
        t = wall - self.offset
        if self._resumed:
            self._resumed = False
            if t < self.last_t - _RESUME_SLACK_S:
                # the clock went back while the gateway was down: go on from the checkpoint
                self.offset += t - self.last_t
                log.warning("wall clock %.0f s behind the detectors' checkpoint: detector time "
                            "goes on from the checkpoint's (detector time = wall time %+.3f s)",
                            self.last_t - t, -self.offset,
                            extra={"event": "detector_time_kept", "offset_s": self.offset})
                t = self.last_t
        if not t <= self.last_t:  # also NaN: the first sample
            self.last_t = t
        return t

    # -- the hot path ----------------------------------------------------------------------
    def process(self, batch: Batch) -> Verdict:
        """Every detector of the batch's points, combined (`gateway.verdict`); the verdict's
        quality is the batch's with the detectors' fault merged, the one quality of the sample."""
        idx = batch.idx
        parts: list[Part] = []
        # the kernels' own types (float64, bool, C order), so no call compiles a new variant;
        # a no-op for what acquisition makes
        values = np.ascontiguousarray(batch.values, dtype=np.float64)
        valid = np.ascontiguousarray(batch.valid)
        t = self._detector_time(float(batch.t))
        for name, det, j, sub in self._plan(idx):
            if sub is idx:  # every point of the batch runs it: no copies
                out = det.update_checked_by_caller(sub, t, values, valid)
            else:
                out = det.update_checked_by_caller(sub, t, values[j], valid[j])
            parts.append(Part(name, det.evidence_names, j, *out))
        combined = combine(parts, idx.shape)
        return Verdict(combined, merge_quality(batch.quality, combined.fault), parts)

    def _plan(self, idx: np.ndarray) -> list[tuple[str, object, np.ndarray, np.ndarray]]:
        """Per detector that serves some of the points idx: (name, detector, their positions in
        the batch, their point indices). A device's batches share one idx array, so the plan is
        made once per device, not once per poll; the cache holds idx itself, so an id is never
        taken for another array's."""
        key = idx
        hit = self._plans.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        if idx.dtype != np.int64 or not idx.flags.c_contiguous:
            idx = np.ascontiguousarray(idx, dtype=np.int64)
        plan = []
        for name, (det, mask) in self.detectors.items():
            j = np.flatnonzero(mask[idx])
            if j.size:
                plan.append((name, det, j, idx if j.size == idx.size else idx[j]))
        if len(self._plans) > 4096:  # batches of formula points bring new arrays
            self._plans.clear()
        self._plans[id(key)] = (key, plan)
        return plan

    def run_block(self, t: np.ndarray, idx: np.ndarray, x: np.ndarray, valid: np.ndarray
                  ) -> list[Part]:
        """Replay's block form: rows t[m] of values x[m, k] for the points idx[k], through the
        same kernels as `process` (each detector's `run`, equal to `update` row by row), in
        `process`'s order, each Part over the columns (of x) it serves. Points not in idx see
        invalid samples only."""
        n = len(self.cfg.points)
        m = t.shape[0]
        full = np.full((m, n), np.nan)
        full_valid = np.zeros((m, n), np.bool_)
        full[:, idx] = x
        full_valid[:, idx] = valid
        parts = []
        for name, (det, mask) in self.detectors.items():
            cols = np.flatnonzero(mask[idx])
            if not cols.size:
                continue
            out = det.run(t, full, full_valid)
            points = idx[cols]
            parts.append(Part(name, tuple(det.evidence_names), cols, out.score[:, points],
                              out.grade[:, points], out.fault[:, points],
                              out.evidence[:, points]))
        return parts
