"""The composition root: builds the store, the bus, the services and the gateway from settings.

Nothing else wires objects together, and nothing is a module-level singleton, so a test can
build as many independent gateways as it likes in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette

from hearth import __version__
from hearth.chat.service import DEFAULT_INSTRUCTIONS, ChatConfig, ChatService
from hearth.config import Settings
from hearth.datadir import RuntimeInfo, ensure_token, remove_runtime, write_runtime
from hearth.events import EventBus, LocalEventBus
from hearth.events_pg import PostgresEventBus
from hearth.gateway.asgi import build_asgi_app
from hearth.gateway.auth import FailureLimiter, TokenStore
from hearth.gateway.dispatch import Router
from hearth.gateway.fanout import EventFanout
from hearth.gateway.handlers import approvals, chat, core, heartbeat, schedules, workflows
from hearth.gateway.server import (
    GatewayServer,
    bind_socket,
    check_bind_host,
    serve_until_stopped,
    url_for,
)
from hearth.gateway.state import GatewayState
from hearth.heartbeat.runner import HeartbeatConfig, HeartbeatRunner
from hearth.heartbeat.service import HeartbeatService
from hearth.heartbeat.target import HeartbeatTarget
from hearth.models import ModelFactory
from hearth.netrules import NetPolicy
from hearth.scheduling.scheduler import Scheduler, SchedulerConfig
from hearth.scheduling.service import ScheduleService
from hearth.scheduling.targets import ScheduleTarget, WorkflowTarget
from hearth.scheduling.timezones import host_zone_name
from hearth.secrets import KeyLookup, SecretStore
from hearth.store import Database
from hearth.store.heartbeat import HeartbeatRepository
from hearth.store.nodes import NODE_HEARTBEAT_INTERVAL, NodeRecord, NodeRepository
from hearth.store.schedules import ScheduleRepository
from hearth.tools import ToolRegistry, builtin_tools
from hearth.workflows.catalog import WorkflowCatalog
from hearth.workflows.engine import EngineConfig, WorkflowEngine

log = logging.getLogger("hearth.app")

NODE_HEARTBEAT_S = NODE_HEARTBEAT_INTERVAL.total_seconds()


def make_node_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class Hearth:
    """One gateway process: call `start()`, serve `asgi`, then `stop()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database.from_url(
            settings.resolved_database_url(),
            sqlite_synchronous=settings.database.sqlite_synchronous,
            busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
            pool_size=settings.database.pool_size,
        )
        ensure_token(settings.token_path)
        limits = settings.limits
        node_id = settings.node_id or make_node_id()
        self.bus: EventBus = (
            PostgresEventBus(settings.resolved_database_url(), node_id)
            if self.db.backend == "postgresql"
            else LocalEventBus()
        )
        tool_settings = settings.tools
        self.tools = ToolRegistry(
            builtin_tools(
                shell_enabled=tool_settings.shell.enabled,
                http_policy=NetPolicy.parse(tool_settings.http.allow, tool_settings.http.deny),
                http_trust_env=tool_settings.http.trust_env,
                shell_env=tool_settings.shell.env,
                shell_pass_env=tool_settings.shell.pass_env,
            )
        )
        self.secrets = SecretStore(settings.data_dir / "secrets.json")
        self.models = ModelFactory(
            settings.models.default,
            settings.providers,
            KeyLookup(self.secrets),
            timeout_s=settings.models.timeout_s,
        )
        self.catalog = WorkflowCatalog(
            [settings.workflows_dir, *settings.workflow_dirs], tools=self.tools.names()
        )
        self.workflows = WorkflowEngine(
            db=self.db,
            bus=self.bus,
            catalog=self.catalog,
            tools=self.tools,
            models=self.models,
            workspace=settings.workspace_dir,
            config=EngineConfig(
                node_id=node_id,
                max_step_runs=settings.workflows.max_step_runs,
                lease=timedelta(seconds=settings.workflows.lease_s),
                recovery_interval_s=settings.workflows.recovery_interval_s,
                exclusive=self.db.backend == "sqlite",
                timezone=settings.timezone or host_zone_name(),
            ),
        )
        # The heartbeat runner asks the chat service whether a chat is streaming; the chat
        # service is built further down, so the runner gets a function that looks it up then.
        heartbeat_config = HeartbeatConfig(
            defer_s=settings.heartbeat.defer_s,
            defer_times=settings.heartbeat.defer_times,
            timeout_s=settings.heartbeat.timeout_s,
            dedupe_window=settings.heartbeat.dedupe_window,
            failing_after=settings.heartbeat.failing_after,
            allow_outside=settings.heartbeat.allow_outside,
        )
        heartbeat_repo = HeartbeatRepository(self.db)
        heartbeat_runner = HeartbeatRunner(
            repo=heartbeat_repo,
            bus=self.bus,
            models=self.models.resolve,
            tools=self.tools,
            workspace=settings.workspace_dir,
            chat_busy=lambda: self.chat.busy(),
            config=heartbeat_config,
        )
        heartbeat_target = HeartbeatTarget(
            heartbeat_repo, heartbeat_runner, settings.data_dir, heartbeat_config
        )
        targets: dict[str, ScheduleTarget] = {
            "workflow": WorkflowTarget(self.workflows),
            "heartbeat": heartbeat_target,
        }
        self.schedules = ScheduleService(
            ScheduleRepository(self.db),
            self.bus,
            targets,
            default_timezone=settings.timezone or host_zone_name(),
        )
        self.scheduler = Scheduler(
            self.db,
            self.bus,
            targets,
            SchedulerConfig(
                max_consecutive_failures=settings.schedules.max_consecutive_failures,
                history=timedelta(days=settings.schedules.history_days),
                history_max=settings.schedules.history_max,
                max_sleep_s=settings.schedules.max_sleep_s,
                misfire_threshold=timedelta(seconds=settings.schedules.misfire_threshold_s),
            ),
        )
        self.chat = ChatService(
            db=self.db,
            bus=self.bus,
            models=self.models,
            tools=self.tools,
            workspace=settings.workspace_dir,
            config=ChatConfig(
                node_id=node_id,
                max_history_messages=settings.chat.max_history_messages,
                max_history_tokens=settings.chat.max_history_tokens,
                approval_timeout=timedelta(seconds=settings.tools.approval_timeout_s),
                tool_policy=dict(settings.tools.policy),
                instructions=settings.chat.instructions or DEFAULT_INSTRUCTIONS,
            ),
        )
        self.heartbeat = HeartbeatService(
            runner=heartbeat_runner,
            repo=heartbeat_repo,
            schedules=self.schedules,
            scheduler=self.scheduler,
            data_dir=settings.data_dir,
            default_timezone=self.schedules.default_timezone,
            config=heartbeat_config,
            exclusive=self.db.backend == "sqlite",
        )
        heartbeat_target.attach(self.heartbeat)
        self.state = GatewayState(
            settings=settings,
            db=self.db,
            bus=self.bus,
            tokens=TokenStore(settings.token_path),
            limiter=FailureLimiter(
                limits.auth_failures_per_minute, window_s=60.0, block_s=limits.auth_block_s
            ),
            node_id=node_id,
            version=__version__,
            workflows=self.workflows,
            schedules=self.schedules,
            scheduler=self.scheduler,
            chat=self.chat,
            heartbeat=self.heartbeat,
        )
        self.router = Router()
        for module in (core, workflows, approvals, schedules, chat, heartbeat):
            self.router.include(module)
        self.asgi: Starlette = build_asgi_app(self.state, self.router)
        self.fanout = EventFanout(self.bus, self.state.connections)
        self.nodes = NodeRepository(self.db)
        self._background: list[asyncio.Task[None]] = []
        self.url: str | None = None
        self.server: GatewayServer | None = None

    async def start(self, url: str) -> None:
        """Migrate the database and start the background services."""
        for directory in (self.settings.workspace_dir, self.settings.workflows_dir):
            directory.mkdir(parents=True, exist_ok=True)
        await self.db.upgrade()
        await self.bus.start()
        now = datetime.now(UTC)
        await self.nodes.register(
            NodeRecord(
                node_id=self.state.node_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                url=url,
                version=__version__,
                started_at=now,
                seen_at=now,
            )
        )
        self.fanout.start()
        self.catalog.reload()
        if self.settings.workflows.watch:
            self.catalog.start_watching()
        await self.workflows.start()
        # Before the scheduler: closing runs a crash left `running` must not race a new tick.
        await self.heartbeat.start()
        await self.scheduler.start()
        await self.chat.start(exclusive=self.db.backend == "sqlite")
        self._background.append(asyncio.create_task(self._node_heartbeat()))

    async def _node_heartbeat(self) -> None:
        while True:
            await asyncio.sleep(NODE_HEARTBEAT_S)
            try:
                await self.nodes.touch(self.state.node_id)
            except Exception:
                log.exception("could not renew this node's registration")

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.heartbeat.stop()
        await self.chat.stop()
        await self.scheduler.stop()
        await self.workflows.stop()
        await self.catalog.stop()
        await self.models.aclose()
        await self.fanout.stop()
        await self.bus.aclose()
        with contextlib.suppress(Exception):
            await self.nodes.remove(self.state.node_id)
        await self.db.dispose()

    async def serve(self, *, install_signals: bool = True) -> None:
        """Bind, start, serve until asked to stop, and clean up `runtime.json` afterwards."""
        settings = self.settings
        check_bind_host(settings.host, settings.allow_remote)
        sock = bind_socket(settings.host, settings.port)
        port = sock.getsockname()[1]
        url = url_for(settings.host, port)
        started_at = datetime.now(UTC).isoformat()
        try:
            await self.start(url)

            def announce(bound_port: int) -> None:
                self.url = url
                write_runtime(
                    settings.runtime_path,
                    RuntimeInfo(os.getpid(), settings.host, bound_port, url, started_at),
                )
                log.info(
                    "gateway listening on %s (WebSocket %s/ws)", url, url.replace("http", "ws", 1)
                )
                log.info("token file: %s", settings.token_path)

            def keep(server: GatewayServer) -> None:
                self.server = server

            await serve_until_stopped(
                self.asgi,
                settings,
                sock,
                install_signals=install_signals,
                on_started=announce,
                server_ready=keep,
            )
        finally:
            remove_runtime(settings.runtime_path)
            await self.stop()
            sock.close()
            log.info("gateway stopped")
