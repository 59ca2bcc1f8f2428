"""What handlers can reach: the services of one gateway process, built by `hearth.app`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hearth.channels.telegram import TelegramService
from hearth.chat.service import ChatService
from hearth.config import Settings
from hearth.events import EventBus
from hearth.gateway.auth import FailureLimiter, TokenStore
from hearth.gateway.connection import ConnectionRegistry
from hearth.heartbeat.service import HeartbeatService
from hearth.live_config import ReloadOutcome
from hearth.mcp import McpManager
from hearth.metrics import Metrics
from hearth.redact import Redactor
from hearth.scheduling.scheduler import Scheduler
from hearth.scheduling.service import ScheduleService
from hearth.secrets import KeyLookup
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
    #: Where provider keys come from (for `models.list`; never sent on the wire).
    keys: KeyLookup
    notifications: NotificationRepository
    #: Re-reads config.toml and applies what it can (`config.reload`); its argument names
    #: who asked, for the log. Settable after construction: the composition root owns it.
    reload_config: Callable[[str], Awaitable[ReloadOutcome]] | None = None
    telegram: TelegramService | None = None
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    metrics: Metrics = field(default_factory=Metrics)
    mcp: McpManager | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    #: Removes secrets from error replies (see hearth.redact).
    redactor: Redactor = field(default_factory=lambda: Redactor(list))

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_monotonic
