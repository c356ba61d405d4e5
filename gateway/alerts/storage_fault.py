"""The storage fault event: tells the platform that the gateway cannot write its state directory.

A fault (kind `fault`, level none, never a colour) on the `fault` topic, raised when the state
directory becomes full, read-only or unwritable (`gateway/state_dir.py`), and cleared when it is
healthy again, with the duration. Its `fault` block names the condition (`storage_full`,
`storage_read_only`, `storage_error`) and the path instead of a point quality. The event goes
through the outbox like any other, so it has its `seq`; while the disk is full that means it is
held in memory and sent directly, which is exactly when the platform needs it. The episode is
kept in the outbox's alert state, so a restart continues it instead of raising it again.
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from gateway.alerts.encoder import EVENT_SCHEMA, time_fields, topic
from gateway.config.model import SiteConfig
from gateway.outbox import AlertState, Outbox
from gateway.state_dir import StorageGuard

__all__ = ["StorageFault", "STORAGE_POINT"]

STORAGE_POINT = "gateway:storage"
_KEY = f"fault/{STORAGE_POINT}"
_ZH = {"full": "磁盘已满", "read_only": "只读", "error": "无法写入"}
_EN = {"full": "is full", "read_only": "is read-only", "error": "cannot be written"}


class StorageFault:
    def __init__(self, cfg: SiteConfig, outbox: Outbox, prefix: str):
        self.cfg = cfg
        self.outbox = outbox
        self.tz = ZoneInfo(cfg.site.timezone)
        self.topic = topic(prefix, cfg.site.code, cfg.gateway.id, "fault")
        state = outbox.alert_states().get(_KEY)
        open_ = state is not None and state.level > 0
        self.kind: str | None = (state.detail or "error") if open_ else None
        self.alert_id = state.alert_id if open_ else None
        self.since = state.since if open_ else None

    def open_alert(self) -> dict[str, tuple[str, int]]:
        """The open episode, for acknowledgements: {alert_id: ("fault", 0)}."""
        return {self.alert_id: ("fault", 0)} if self.alert_id is not None else {}

    def update(self, t: float, guard: StorageGuard) -> list[dict]:
        """Raise when the directory turns unhealthy, clear when it is healthy again; committed
        (or held) in the outbox before this returns."""
        kind = guard.kind
        if (kind is None) == (self.kind is None):
            return []
        if kind is not None:
            self.kind, self.alert_id, self.since = kind, str(uuid.uuid4()), t
            event = self._event(t, "raised", kind, guard)
            state = AlertState(_KEY, 1, self.alert_id, t, kind)
        else:
            event = self._event(t, "cleared", self.kind or "error", guard)
            state = AlertState(_KEY, 0, None, None)
            self.kind = self.alert_id = self.since = None
        return self.outbox.commit_events([(self.topic, event)], [state])

    def _event(self, t: float, state: str, kind: str, guard: StorageGuard) -> dict:
        since = self.since if self.since is not None else t
        duration = max(0.0, t - since)
        path = str(guard.directory)
        free = guard.free_bytes()
        held = self.outbox.hold.counts()
        if state == "raised":
            message = {"zh": f"网关状态目录 {path} {_ZH[kind]}：{guard.reason}；监测与预警照常，"
                             "未能写入的事件暂存内存并直接发送",
                       "en": f"gateway state directory {path} {_EN[kind]}: {guard.reason}; "
                             "monitoring and alerting go on, events that cannot be stored are "
                             "held in memory and sent directly"}
        else:
            message = {"zh": f"网关状态目录 {path} 恢复可写，持续 {duration / 60:.1f} 分钟",
                       "en": f"gateway state directory {path} writable again after "
                             f"{duration / 60:.1f} min"}
        return {
            "schema": EVENT_SCHEMA, "event_id": str(uuid.uuid4()),
            "site": self.cfg.site.code, "gateway": self.cfg.gateway.id, "device": "",
            "point": STORAGE_POINT, "quantity": "storage", "unit": "B",
            **time_fields("observed_at", t, self.tz),
            "alert_id": self.alert_id, "kind": "fault", "state": state, "level": "none",
            "grade_roman": None, "prev_level": "none", "detector": "storage",
            "value": float(free) if free is not None else None,
            "threshold": float(guard.reserve_bytes),
            "criterion": "the state directory refuses writes, or holds less free space than "
                         "the outbox's reserve",
            "evidence": {"free_bytes": float(free) if free is not None else None,
                         "held_events": float(held["held_events"]),
                         "held_telemetry": float(held["held_telemetry"])},
            "fault": {"condition": f"storage_{kind}", "path": path,
                      "duration_s": round(duration, 3),
                      "stage": "cleared" if state == "cleared" else "open"},
            "message": message,
            "since": int(round(since * 1000)),
        }
