"""What handlers can reach: the services of one gateway process, built by `hearth.app`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hearth.chat.service import ChatService
from hearth.config import Settings
from hearth.events import EventBus
from hearth.gateway.auth import FailureLimiter, TokenStore
from hearth.gateway.connection import ConnectionRegistry
from hearth.heartbeat.service import HeartbeatService
from hearth.scheduling.scheduler import Scheduler
from hearth.scheduling.service import ScheduleService
from hearth.store import Database
from hearth.store.notifications import NotificationRepository
from hearth.workflows.engine import WorkflowEngine


@dataclass
class GatewayState:
    settings: Settings
    db: Database
    bus: EventBus
    tokens: TokenStore
    limiter: FailureLimiter
    node_id: str
    version: str
    workflows: WorkflowEngine
    schedules: ScheduleService
    scheduler: Scheduler
    chat: ChatService
    heartbeat: HeartbeatService
    notifications: NotificationRepository
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_monotonic
