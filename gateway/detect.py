"""The detect stage: runs the site's detectors over each Batch and says each point's grade.

Detector channels are the site's point indices, so one kernel call updates every point of a
batch at once. The point's grade is the highest grade any of its detectors gives; the alert engine
then names the change. Detector state is checkpointed to the state folder so a restarted gateway
continues where it stopped instead of re-learning (and re-raising) everything.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from detectors.threshold import ThresholdDetector, ThresholdParams
from gateway.alerts.engine import PointVerdict
from gateway.batch import Batch
from gateway.config.model import SiteConfig

__all__ = ["DetectStage", "threshold_params"]

log = logging.getLogger("minewatch.detect")

_DIRECTION = {"upper": 1, "lower": -1, "both": 2}


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


class DetectStage:
    def __init__(self, cfg: SiteConfig, checkpoint: Path | None = None, restore: bool = True):
        self.cfg = cfg
        ThresholdDetector.warm_up()
        self.threshold = ThresholdDetector(threshold_params(cfg))
        self.checkpoint = checkpoint
        self.names = tuple(self.threshold.evidence_names)
        if restore and checkpoint is not None and checkpoint.is_file():
            self._restore(checkpoint)

    def transfer(self, old: DetectStage) -> None:
        """Carry detector state over a reload, point by point (points may be added, removed or
        reordered; a point's thresholds may change and its state is kept)."""
        old_index = {p.name: p.index for p in old.cfg.points}
        pairs = [(p.index, old_index[p.name]) for p in self.cfg.points if p.name in old_index]
        if not pairs:
            return
        new_rows, old_rows = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
        state = self.threshold.state()
        for key, arr in old.threshold.state().items():
            state[key][new_rows] = arr[old_rows]
        self.threshold.load(state)

    def _restore(self, path: Path) -> None:
        try:
            with np.load(path) as data:
                state = {k: data[k] for k in data.files}
            self.threshold.load(state)
            log.info("detector state restored from %s", path, extra={"event": "detector_restore"})
        except (OSError, ValueError, KeyError) as exc:
            # a checkpoint of another site layout: start fresh rather than misattribute state
            log.warning("detector checkpoint %s not used: %s", path, exc,
                        extra={"event": "detector_restore_failed"})

    def reconcile(self, committed_levels: np.ndarray) -> None:
        """After a crash the checkpoint may be older than the alert state the engine committed:
        where the detector holds a lower grade than the engine published, seed the engine's."""
        behind = np.flatnonzero(self.threshold.grade < committed_levels)
        if behind.size:
            self.threshold.seed_grades(behind, committed_levels[behind])
            log.warning("detector state of %d point(s) was behind the committed alert state; "
                        "seeded from it", behind.size, extra={"event": "detector_reconciled"})

    def save(self) -> None:
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_suffix(".tmp.npz")
        np.savez(tmp, **self.threshold.state())
        tmp.replace(self.checkpoint)

    def process(self, batch: Batch) -> PointVerdict:
        out = self.threshold.update(batch.idx, batch.t, batch.values, batch.valid)
        return PointVerdict(out.grade, out.score, _ThresholdOnly(), out.evidence, self.names)


class _ThresholdOnly:
    """Every point's grade comes from the threshold detector (the only one wired so far)."""

    def __getitem__(self, j: int) -> str:
        return "threshold"
