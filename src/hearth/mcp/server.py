"""One MCP server: connect on first use, keep its tool list, restart it when it dies.

A connection lives in one task (the SDK's transports are anyio context managers that must be
entered and left by the same task), run by a `SupervisedLoop` whose body is one connection
from start to end and returns the delay before the next one. So:

- a server that cannot start is reported once (log, `state`/`error` for `gateway.status` and
  `hearth doctor`) and retried quietly with exponential backoff; its tools are absent, so
  requests that do not need it are not slowed down or failed by it;
- a server that dies (its process exits, its HTTP endpoint goes away) is noticed by the call
  that was running (it fails with a clear error) or by a periodic ping, and is started again;
- `tools/list_changed` from the server, and `refresh()` (a `hearth reload`), list its tools
  again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from hearth import __version__
from hearth.config import McpServerSettings
from hearth.mcp.results import convert, error_text
from hearth.mcp.secrets import MissingSecretError, resolve
from hearth.mcp.state import McpState
from hearth.mcp.stderr import StderrToLog
from hearth.mcp.tool import McpTool, mcp_tool
from hearth.secrets import SecretStore
from hearth.supervised import SupervisedLoop
from hearth.tools.base import ToolError

if TYPE_CHECKING:
    from mcp import ClientSession

log = logging.getLogger("hearth.mcp")

#: First delay before starting a server again; doubled per failure in a row, up to the cap.
RESTART_S = 0.5
MAX_BACKOFF_S = 60.0
#: A connection that lived this long was healthy: its end starts the backoff afresh.
STABLE_S = 30.0
#: How often an idle connection is checked with a ping (a dead stdio server sends nothing).
PING_S = 15.0


def _reason(exc: BaseException) -> str:
    """The innermost meaningful message of an exception (anyio wraps them in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, FileNotFoundError | PermissionError) and exc.filename:
        return f"cannot run {exc.filename}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return text if len(text) < 500 else text[:500] + "…"


def _stdio_params(settings: McpServerSettings, env: dict[str, str]) -> Any:
    """The SDK's parameters for a stdio server (`~` in `cwd` expanded)."""
    from mcp.client.stdio import StdioServerParameters

    assert settings.command is not None
    return StdioServerParameters(
        command=settings.command,
        args=settings.args,
        env=env,
        cwd=os.path.expanduser(settings.cwd) if settings.cwd else None,
    )


class McpServer:
    def __init__(
        self,
        name: str,
        settings: McpServerSettings,
        *,
        secrets: SecretStore | None,
        trust_hints: bool,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.secrets = secrets
        self.trust_hints = trust_hints
        self.on_change = on_change
        self.state = McpState.IDLE if settings.enabled else McpState.DISABLED
        self.error: str | None = None
        self.tools: tuple[McpTool, ...] = ()
        self.server_version: str | None = None
        self._session: ClientSession | None = None
        self._settled = asyncio.Event()
        self._wake = asyncio.Event()
        self._refresh_wanted = False
        self._lost: str | None = None
        self._failures = 0
        self._loop = SupervisedLoop(
            f"MCP server {name}",
            self._connection,
            interval_s=RESTART_S,
            backoff_max_s=MAX_BACKOFF_S,
            log=log,
        )

    @property
    def transport(self) -> str:
        return "stdio" if self.settings.command is not None else self.settings.transport

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self.state is not McpState.DISABLED and self.state is not McpState.STOPPED:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        self._session = None
        self.tools = ()
        self.state = McpState.STOPPED
        self._settled.set()

    async def ready(self, timeout_s: float | None = None) -> bool:
        """Start if needed and wait (bounded) until connected; False when it is not usable."""
        self.start()
        if self.state is McpState.READY:
            return True
        if self.state is not McpState.STARTING and self.state is not McpState.IDLE:
            return False
        try:
            async with asyncio.timeout(timeout_s or self.settings.startup_timeout_s):
                await self._settled.wait()
        except TimeoutError:
            return False
        return self.usable

    @property
    def failures(self) -> int:
        """Failed starts (or early deaths) in a row; 0 once a connection stayed up."""
        return self._failures

    @property
    def usable(self) -> bool:
        return self.state is McpState.READY and self._session is not None

    def refresh(self) -> None:
        """List the tools again (after `tools/list_changed` or a reload)."""
        self._refresh_wanted = True
        self._wake.set()

    def _set(self, state: McpState) -> None:
        self.state = state
        if state in (McpState.READY, McpState.FAILED):
            self._settled.set()
        else:
            self._settled.clear()

    # -- one connection ---------------------------------------------------------------------

    async def _connection(self) -> float:
        """Run one connection until it ends; the delay before the next one."""
        if self.state is not McpState.FAILED:
            self._set(McpState.STARTING)
        ready_at: float | None = None
        self._lost = None
        try:
            async with self._connect() as session:
                ready_at = time.monotonic()
                self._session = session
                self.error = None
                self._set(McpState.READY)
                self.on_change()
                log.info(
                    "MCP server %s ready (%s): %d tools",
                    self.name,
                    self.transport,
                    len(self.tools),
                )
                await self._serve(session)
            reason = self._lost or "the connection closed"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = self._lost or _reason(exc)
        finally:
            self._session = None
            had_tools = bool(self.tools)
            self.tools = ()
            if had_tools:
                self.on_change()
        if ready_at is None:
            self._failures += 1
            if self.state is not McpState.FAILED:
                log.error(
                    "MCP server %s failed to start: %s; its tools are unavailable (retried in "
                    "the background)",
                    self.name,
                    reason,
                )
            self.error = reason
            self._set(McpState.FAILED)
        else:
            lived = time.monotonic() - ready_at
            self._failures = self._failures + 1 if lived < STABLE_S else 1
            log.warning("MCP server %s stopped (%s); starting it again", self.name, reason)
            self.error = reason
            self._set(McpState.STARTING)
        return min(MAX_BACKOFF_S, RESTART_S * 2.0 ** min(self._failures - 1, 16))

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[ClientSession]:
        import anyio
        from mcp import ClientSession
        from mcp.types import Implementation

        settings = self.settings
        where = f"mcp.servers.{self.name}"
        async with contextlib.AsyncExitStack() as stack:
            if settings.command is not None:
                from mcp.client.stdio import stdio_client

                env = resolve(settings.env, self.secrets, f"{where}.env")
                errlog = await stack.enter_async_context(
                    StderrToLog(self.name, [v for k, v in env.items() if settings.env[k] != v])
                )
                assert errlog.file is not None
                params = _stdio_params(settings, env)
                read, write = await stack.enter_async_context(
                    stdio_client(params, errlog=errlog.file)
                )
                errlog.spawned()
            else:
                assert settings.url is not None
                headers = resolve(settings.headers, self.secrets, f"{where}.headers")
                if settings.transport == "sse":
                    from mcp.client.sse import sse_client

                    read, write = await stack.enter_async_context(
                        sse_client(settings.url, headers=headers)
                    )
                else:
                    from mcp.client.streamable_http import streamable_http_client
                    from mcp.shared._httpx_utils import create_mcp_http_client

                    client = await stack.enter_async_context(
                        create_mcp_http_client(headers=headers)
                    )
                    read, write = await stack.enter_async_context(
                        streamable_http_client(settings.url, http_client=client)
                    )
            session = await stack.enter_async_context(
                ClientSession(
                    read,
                    write,
                    message_handler=self._on_message,
                    client_info=Implementation(name="hearth", version=__version__),
                )
            )
            with anyio.fail_after(settings.startup_timeout_s):
                init = await session.initialize()
                self.server_version = init.server_info.version or None
                await self._list_tools(session)
            yield session

    async def _on_message(self, message: Any) -> None:
        from mcp.types import ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification):
            log.info("MCP server %s: its tool list changed", self.name)
            self.refresh()
        elif isinstance(message, Exception):
            log.debug("MCP server %s: transport error: %s", self.name, message)

    async def _list_tools(self, session: ClientSession) -> None:
        listed: list[Any] = []
        cursor: str | None = None
        from mcp.types import PaginatedRequestParams

        while True:
            page = await session.list_tools(
                params=PaginatedRequestParams(cursor=cursor) if cursor else None
            )
            listed.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = tuple(
            mcp_tool(self, self.name, item, trust_hints=self.trust_hints) for item in listed
        )

    async def _serve(self, session: ClientSession) -> None:
        """Wait for a refresh, a lost connection, or the next ping; return when it is lost."""
        import anyio

        while self._lost is None:
            try:
                await asyncio.wait_for(self._wake.wait(), PING_S)
            except TimeoutError:
                try:
                    with anyio.fail_after(self.settings.startup_timeout_s):
                        await session.send_ping()
                except Exception as exc:
                    self._connection_lost(f"no answer to a ping: {_reason(exc)}")
                continue
            self._wake.clear()
            if self._refresh_wanted and self._lost is None:
                self._refresh_wanted = False
                try:
                    with anyio.fail_after(self.settings.startup_timeout_s):
                        await self._list_tools(session)
                except Exception as exc:
                    self._connection_lost(f"listing its tools failed: {_reason(exc)}")
                    continue
                log.info("MCP server %s: %d tools", self.name, len(self.tools))
                self.on_change()

    def _connection_lost(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason
        if self.state is McpState.READY:
            # Calls from now on wait for the new connection: until the connection task has
            # unwound, the old session is still set and would fail the next call the same way.
            self._set(McpState.STARTING)
        self._wake.set()

    # -- calls ------------------------------------------------------------------------------

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        """Call `tool` (its name on the server); raises ToolError with a readable reason."""
        import anyio
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED, CallToolResult

        full = f"{self.name}.{tool}"
        if not await self.ready():
            why = self.error or f"it is {self.state}"
            raise ToolError(f"{full}: MCP server {self.name!r} is not available: {why}")
        session = self._session
        assert session is not None
        try:
            with anyio.fail_after(self.settings.call_timeout_s):
                result = await session.call_tool(tool, args)
        except TimeoutError:
            raise ToolError(
                f"{full}: no answer within {self.settings.call_timeout_s:g} s "
                f"(mcp.servers.{self.name}.call_timeout_s)"
            ) from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._connection_lost("the connection closed during a call")
                raise ToolError(
                    f"{full} failed: MCP server {self.name!r} closed the connection during the "
                    "call (it may have crashed); it is being started again"
                ) from None
            raise ToolError(f"{full} failed: {exc.message}") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            self._connection_lost(f"the connection broke: {_reason(exc)}")
            raise ToolError(
                f"{full} failed: the connection to MCP server {self.name!r} broke; it is being "
                "started again"
            ) from None
        if not isinstance(result, CallToolResult):
            raise ToolError(f"{full}: the server answered with {type(result).__name__}")
        if result.is_error:
            raise ToolError(f"{full} failed: {error_text(result.content)}")
        return convert(result.content, result.structured_content)

    def problem(self) -> str | None:
        """Why this server's tools are not available now (None when they are)."""
        if self.state is McpState.READY:
            return None
        if self.state is McpState.FAILED:
            return f"MCP server {self.name!r} failed to start: {self.error}"
        if self.state is McpState.DISABLED:
            return f"MCP server {self.name!r} is disabled (mcp.servers.{self.name}.enabled)"
        if self.state is McpState.IDLE:
            return f"MCP server {self.name!r} is not started yet (servers start on first use)"
        return f"MCP server {self.name!r} is {self.state}"


__all__ = ["McpServer", "MissingSecretError"]
