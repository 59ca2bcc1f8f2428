"""The composition root: builds the store, the bus, the services and the gateway from settings.

Nothing else wires objects together, and nothing is a module-level singleton, so a test can
build as many independent gateways as it likes in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from watchfiles import Change, awatch

from hearth import __version__
from hearth.channels.telegram import TelegramService
from hearth.chat.service import DEFAULT_INSTRUCTIONS, ChatConfig, ChatService
from hearth.config import CONFIG_FILE, ConfigError, Settings, key_matches, reload_settings
from hearth.datadir import (
    PRIVATE_DIR,
    DataDirLock,
    RuntimeInfo,
    create_private_file,
    ensure_token,
    remove_runtime,
    secure_data_dir,
    write_runtime,
)
from hearth.events import EventBus, LocalEventBus
from hearth.gateway.asgi import build_asgi_app
from hearth.gateway.auth import FailureLimiter, TokenStore
from hearth.gateway.dispatch import Router
from hearth.gateway.fanout import EventFanout
from hearth.gateway.handlers import (
    approvals,
    chat,
    config,
    core,
    heartbeat,
    mcp,
    schedules,
    subscriptions,
    telegram,
    workflows,
)
from hearth.gateway.handlers import notifications as notification_handlers
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
from hearth.live_config import ReloadOutcome, plan_reload
from hearth.malloc import IdleTrim
from hearth.mcp import McpManager
from hearth.metrics import Metrics
from hearth.models import ModelFactory
from hearth.netrules import NetPolicy
from hearth.pointers import remove_pointer, write_pointer
from hearth.redact import RedactingBus, Redactor, gateway_secrets
from hearth.scheduling.scheduler import Scheduler, SchedulerConfig
from hearth.scheduling.service import ScheduleService
from hearth.scheduling.targets import ScheduleTarget, WorkflowTarget
from hearth.scheduling.timezones import host_zone_name
from hearth.secrets import KeyLookup, SecretStore
from hearth.store import Database
from hearth.store.heartbeat import HeartbeatRepository
from hearth.store.nodes import NODE_HEARTBEAT_INTERVAL, NodeRecord, NodeRepository
from hearth.store.notifications import NotificationRepository
from hearth.store.schedules import ScheduleRepository
from hearth.store.tick_stores import tick_store
from hearth.supervised import SupervisedLoop
from hearth.tools import ToolRegistry, builtin_tools
from hearth.workflows.catalog import WorkflowCatalog
from hearth.workflows.engine import EngineConfig, WorkflowEngine

log = logging.getLogger("hearth.app")

NODE_HEARTBEAT_S = NODE_HEARTBEAT_INTERVAL.total_seconds()
#: Editors write a file in several steps; wait for them to settle before re-reading it.
CONFIG_WATCH_DEBOUNCE_MS = 300


def heartbeat_config(settings: Settings) -> HeartbeatConfig:
    return HeartbeatConfig(
        defer_s=settings.heartbeat.defer_s,
        defer_times=settings.heartbeat.defer_times,
        timeout_s=settings.heartbeat.timeout_s,
        dedupe_window=settings.heartbeat.dedupe_window,
        failing_after=settings.heartbeat.failing_after,
        allow_outside=settings.heartbeat.allow_outside,
        tool_policy=dict(settings.tools.policy),
    )


def scheduler_config(settings: Settings) -> SchedulerConfig:
    return SchedulerConfig(
        max_consecutive_failures=settings.schedules.max_consecutive_failures,
        history=timedelta(days=settings.schedules.history_days),
        history_max=settings.schedules.history_max,
        max_sleep_s=settings.schedules.max_sleep_s,
        misfire_threshold=timedelta(seconds=settings.schedules.misfire_threshold_s),
    )


def chat_config(settings: Settings, node_id: str) -> ChatConfig:
    return ChatConfig(
        node_id=node_id,
        max_history_messages=settings.chat.max_history_messages,
        max_history_tokens=settings.chat.max_history_tokens,
        approval_timeout=timedelta(seconds=settings.tools.approval_timeout_s),
        tool_policy=dict(settings.tools.policy),
        instructions=settings.chat.instructions or DEFAULT_INSTRUCTIONS,
    )


def make_node_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class Hearth:
    """One gateway process: call `start()`, serve `asgi`, then `stop()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: Logged by `serve()` once logging is set up: the data directory had to be made private.
        self.data_dir_warning = secure_data_dir(settings.data_dir)
        if settings.database_url is None:
            # SQLite gives its -wal and -shm files the mode of the database file.
            create_private_file(settings.data_dir / "hearth.db")
        self.db = Database.from_url(
            settings.resolved_database_url(),
            sqlite_synchronous=settings.database.sqlite_synchronous,
            busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
            pool_size=settings.database.pool_size,
        )
        ensure_token(settings.token_path)
        limits = settings.limits
        node_id = settings.node_id or make_node_id()
        self.secrets = SecretStore(settings.data_dir / "secrets.json")
        self.keys = KeyLookup(self.secrets)
        #: Removes keys and the token from events, error replies, tool results and stored
        #: step errors (the log filter uses the same secrets: `secret_values`).
        self.redactor = Redactor(self.secret_values)
        inner_bus: EventBus = LocalEventBus()
        if self.db.backend == "postgresql":
            # Imported here: asyncpg and its dialect cost ~5 MB a SQLite gateway never uses.
            from hearth.events_pg import PostgresEventBus

            inner_bus = PostgresEventBus(
                settings.resolved_database_url(),
                node_id,
                peer_beat_s=settings.database.peer_beat_s,
            )
        self.bus: EventBus = RedactingBus(inner_bus, self.redactor)
        self.notifications = NotificationRepository(
            self.db, keep=settings.notifications.keep, keep_max=settings.notifications.keep_max
        )
        tool_settings = settings.tools
        self.tools = ToolRegistry(
            redact=self.redactor.value,
            tools=builtin_tools(
                shell_enabled=tool_settings.shell.enabled,
                http_policy=NetPolicy.parse(tool_settings.http.allow, tool_settings.http.deny),
                http_trust_env=tool_settings.http.trust_env,
                shell_env=tool_settings.shell.env,
                shell_pass_env=tool_settings.shell.pass_env,
                notifications=self.notifications,
            ),
        )
        #: MCP servers lend their tools to the registry as SERVER.TOOL; they start on first use.
        self.mcp = McpManager(settings.mcp, self.secrets)
        self.tools.add_source(self.mcp)
        self.models = self._model_factory(settings)
        #: Factories replaced by a reload; their HTTP clients may still serve a running call,
        #: so they are closed when the gateway stops.
        self._retired_models: list[ModelFactory] = []
        self.catalog = WorkflowCatalog(
            [settings.workflows_dir, *settings.workflow_dirs], tools=self.tools
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
                crash_limit=settings.workflows.crash_limit,
                exclusive=self.db.backend == "sqlite",
                timezone=settings.timezone or host_zone_name(),
            ),
        )
        # The heartbeat runner asks the chat service whether a chat is streaming; the chat
        # service is built further down, so the runner gets a function that looks it up then.
        hb_config = heartbeat_config(settings)
        heartbeat_repo = HeartbeatRepository(self.db)
        self.heartbeat_runner = heartbeat_runner = HeartbeatRunner(
            repo=heartbeat_repo,
            bus=self.bus,
            models=self.models.resolve,
            tools=self.tools,
            workspace=settings.workspace_dir,
            chat_busy=lambda: self.chat.busy(),
            config=hb_config,
        )
        self.heartbeat_target = heartbeat_target = HeartbeatTarget(
            heartbeat_repo, heartbeat_runner, settings.data_dir, hb_config
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
            scheduler_config(settings),
            store=tick_store(self.db, self.workflows.executions),
        )
        self.chat = ChatService(
            db=self.db,
            bus=self.bus,
            models=self.models,
            tools=self.tools,
            workspace=settings.workspace_dir,
            config=chat_config(settings, node_id),
        )
        self.heartbeat = HeartbeatService(
            runner=heartbeat_runner,
            repo=heartbeat_repo,
            schedules=self.schedules,
            scheduler=self.scheduler,
            data_dir=settings.data_dir,
            default_timezone=self.schedules.default_timezone,
            config=hb_config,
            exclusive=self.db.backend == "sqlite",
        )
        heartbeat_target.attach(self.heartbeat)
        self.metrics = Metrics()
        #: Hands memory freed after a burst back to the system (see `hearth.malloc`).
        self.idle_trim = IdleTrim()
        self._trimmer = SupervisedLoop("malloc-trim", self.idle_trim.step, interval_s=1.0)
        self.telegram = TelegramService(
            settings=settings.telegram,
            secrets=self.secrets,
            db=self.db,
            bus=self.bus,
            chat=self.chat,
            workflows=self.workflows,
            node_id=node_id,
            version=__version__,
            observe=self.metrics.telegram_request,
        )
        self.workflows.metrics = self.metrics
        self.workflows.runner.redact = self.redactor.text
        self.scheduler.metrics = self.metrics
        heartbeat_runner.metrics = self.metrics
        self.chat.metrics = self.metrics
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
            keys=self.keys,
            reload_config=self.reload_config,
            telegram=self.telegram,
            metrics=self.metrics,
            notifications=self.notifications,
            redactor=self.redactor,
            mcp=self.mcp,
        )
        self.router = Router()
        for module in (
            core,
            workflows,
            approvals,
            schedules,
            chat,
            heartbeat,
            config,
            telegram,
            mcp,
            subscriptions,
        ):
            self.router.include(module)
        self.router.include(notification_handlers)
        self.asgi: Starlette = build_asgi_app(self.state, self.router)
        self.fanout = EventFanout(self.bus, self.state.connections)
        self.nodes = NodeRepository(self.db)
        self._background: list[asyncio.Task[None]] = []
        self._reloads: set[asyncio.Task[None]] = set()
        self._reload_lock = asyncio.Lock()
        self.url: str | None = None
        self.server: GatewayServer | None = None

    def secret_values(self) -> list[str]:
        """Every secret this gateway holds (read afresh: keys change while it runs)."""
        return gateway_secrets(self.settings, self.secrets, self.settings.token_path)

    async def start(self, url: str) -> None:
        """Migrate the database and start the background services."""
        for directory in (self.settings.workspace_dir, self.settings.workflows_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
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
        await self.telegram.start()
        self._background.append(asyncio.create_task(self._node_heartbeat()))
        if self.idle_trim.available:
            self._trimmer.start()
        if self.settings.watch_config:
            self._background.append(asyncio.create_task(self._watch_config(), name="config-watch"))

    # -- configuration reload ---------------------------------------------------------------

    def _model_factory(self, settings: Settings) -> ModelFactory:
        return ModelFactory(
            settings.models.default,
            settings.providers,
            self.keys,
            timeout_s=settings.models.timeout_s,
        )

    async def reload_config(self, source: str) -> ReloadOutcome:
        """Re-read config.toml and apply what can change without a restart.

        A file that does not load leaves every running setting as it was: ConfigError is
        logged and raised for the caller to report. `source` (SIGHUP, config.reload, the file
        watcher) only goes into the log line.
        """
        async with self._reload_lock:
            path = self.settings.config_path
            try:
                loaded = reload_settings(self.settings)
            except ConfigError as exc:
                log.error("config reload (%s) failed; running settings kept: %s", source, exc)
                raise
            effective, outcome = plan_reload(self.settings, loaded)
            self._apply_settings(effective, outcome.applied)
            # Always: a reload also lists the tools of running MCP servers again.
            await self.mcp.reconfigure(effective.mcp)
            line = outcome.summary(str(path))
            if outcome.needs_restart:
                log.warning("%s (%s)", line, source)
            else:
                log.info("%s (%s)", line, source)
            return outcome

    def _apply_settings(self, settings: Settings, applied: list[str]) -> None:
        """Hand the services their new settings. Everything here is an attribute swap, so a
        request running right now finishes with the settings it started with."""
        self.settings = settings
        self.state.settings = settings
        if any(key_matches(key, ("models", "providers")) for key in applied):
            self._retired_models.append(self.models)
            self.models = self._model_factory(settings)
            self.workflows.models = self.models
            self.chat.models = self.models
            self.heartbeat_runner.models = self.models.resolve
        self.chat.config = chat_config(settings, self.state.node_id)
        hb_config = heartbeat_config(settings)
        self.heartbeat_runner.config = hb_config
        self.heartbeat_target.config = hb_config
        self.heartbeat.config = hb_config
        fresh = scheduler_config(settings)
        self.scheduler.config = dataclasses.replace(
            self.scheduler.config,
            max_consecutive_failures=fresh.max_consecutive_failures,
            history=fresh.history,
            history_max=fresh.history_max,
            max_sleep_s=fresh.max_sleep_s,
            misfire_threshold=fresh.misfire_threshold,
        )
        self.state.limiter.limit = settings.limits.auth_failures_per_minute
        self.state.limiter.block_s = settings.limits.auth_block_s

    def request_reload(self, source: str) -> None:
        """Reload in the background (from a signal handler); errors are logged by the reload."""

        async def reload() -> None:
            with contextlib.suppress(ConfigError):
                await self.reload_config(source)

        task = asyncio.create_task(reload(), name="config-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _watch_config(self) -> None:
        """Reload when config.toml is written, created, replaced or removed."""
        directory = self.settings.config_path.parent

        def is_config(_change: Change, path: str) -> bool:
            return Path(path).name == CONFIG_FILE

        try:
            async for _changes in awatch(
                directory,
                watch_filter=is_config,
                debounce=CONFIG_WATCH_DEBOUNCE_MS,
                recursive=False,
            ):
                with contextlib.suppress(ConfigError):
                    await self.reload_config("config.toml changed")
        except Exception:
            log.exception("stopped watching config.toml; reload with SIGHUP or `hearth reload`")

    async def _node_heartbeat(self) -> None:
        while True:
            await asyncio.sleep(NODE_HEARTBEAT_S)
            try:
                await self.nodes.touch(self.state.node_id)
            except Exception:
                log.exception("could not renew this node's registration")

    async def stop(self) -> None:
        await self._trimmer.stop()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.heartbeat.stop()
        await self.telegram.stop()
        await self.chat.stop()
        await self.scheduler.stop()
        await self.workflows.stop()
        # After the services that call tools: a step running now ends as "interrupted" (and is
        # resumed by the next start), not failed by a server that went away under it.
        await self.mcp.stop()
        await self.catalog.stop()
        await self.models.aclose()
        for retired in self._retired_models:
            await retired.aclose()
        await self.fanout.stop()
        await self.bus.aclose()
        with contextlib.suppress(Exception):
            await self.nodes.remove(self.state.node_id)
        await self.db.dispose()

    async def serve(self, *, install_signals: bool = True) -> None:
        """Lock the data directory, bind, start, serve until asked to stop, then clean up.

        The lock comes first: a second gateway on the same data directory must be refused
        before it touches the database, the port or `runtime.json`.
        """
        settings = self.settings
        check_bind_host(settings.host, settings.allow_remote)
        lock = DataDirLock(settings.data_dir)
        lock.acquire()
        if self.data_dir_warning:
            log.warning("%s", self.data_dir_warning)
        try:
            await self._serve_locked(lock, install_signals)
        finally:
            lock.release()

    async def _serve_locked(self, lock: DataDirLock, install_signals: bool) -> None:
        settings = self.settings
        sock = bind_socket(settings.host, settings.port)
        port = sock.getsockname()[1]
        lock.record(port)
        url = url_for(settings.host, port)
        started_at = datetime.now(UTC).isoformat()
        pointer: list[Path | None] = []
        try:
            await self.start(url)

            def announce(bound_port: int) -> None:
                self.url = url
                write_runtime(
                    settings.runtime_path,
                    RuntimeInfo(os.getpid(), settings.host, bound_port, url, started_at),
                )
                # So that a terminal without HEARTH_DATA_DIR still finds this gateway.
                pointer.append(write_pointer(settings.data_dir, os.getpid(), bound_port, url))
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
                on_reload=lambda: self.request_reload("SIGHUP"),
            )
        finally:
            remove_runtime(settings.runtime_path, pid=os.getpid())
            for path in pointer:
                remove_pointer(path)
            await self.stop()
            sock.close()
            log.info("gateway stopped")
