"""All configured MCP servers, as one source of tools for the shared registry.

The registry asks `tools()` on every lookup, so a server that starts, dies or changes its
tool list is reflected at the next call without re-registering anything. `reconfigure` (a
reload of config.toml) stops servers that were removed or changed, adds new ones, and lists
the tools of the others again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from hearth.config import McpSettings
from hearth.errors import DomainError
from hearth.mcp.server import McpServer
from hearth.mcp.state import McpState
from hearth.mcp.tool import McpTool
from hearth.secrets import SecretStore

log = logging.getLogger("hearth.mcp")


class McpServerNotFoundError(DomainError, LookupError):
    """No MCP server has that name; `code` matches the protocol's error code."""

    code = "MCP_SERVER_NOT_FOUND"


class McpManager:
    def __init__(
        self,
        settings: McpSettings,
        secrets: SecretStore | None,
        *,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.on_change = on_change
        self.servers: dict[str, McpServer] = {}
        for name in settings.servers:
            self.servers[name] = self._make(name)

    def _make(self, name: str) -> McpServer:
        return McpServer(
            name,
            self.settings.servers[name],
            secrets=self.secrets,
            trust_hints=self.settings.trust_read_only_hints,
            on_change=self.on_change,
        )

    # -- ToolSource -------------------------------------------------------------------------

    def tools(self) -> Iterator[McpTool]:
        for server in self.servers.values():
            if server.state is McpState.READY:
                yield from server.tools

    def server_for(self, tool_name: str) -> McpServer | None:
        """The server a `SERVER.TOOL` name belongs to, None for other names."""
        prefix, dot, _rest = tool_name.partition(".")
        return self.servers.get(prefix) if dot else None

    async def prepare(self, name: str | None = None) -> None:
        if name is None:
            targets = list(self.servers.values())
        else:
            server = self.server_for(name)
            targets = [server] if server is not None else []
        if targets:
            await asyncio.gather(*(server.ready() for server in targets))

    def unavailable(self, name: str) -> str | None:
        server = self.server_for(name)
        return server.problem() if server is not None else None

    # -- management -------------------------------------------------------------------------

    def get(self, name: str) -> McpServer:
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(sorted(self.servers)) or "none are configured"
            raise McpServerNotFoundError(
                f"no MCP server {name!r} ([mcp.servers.NAME] in config.toml; known: {known})"
            ) from None

    async def reconfigure(self, settings: McpSettings) -> None:
        """Apply new `[mcp]` settings; servers whose settings did not change keep running and
        list their tools again."""
        old, self.settings = self.settings, settings
        trust_changed = old.trust_read_only_hints != settings.trust_read_only_hints
        stopping = [
            name
            for name, server in self.servers.items()
            if settings.servers.get(name) != server.settings or trust_changed
        ]
        for name in stopping:
            await self.servers.pop(name).stop()
        for name in settings.servers:
            if name not in self.servers:
                self.servers[name] = self._make(name)
        for server in self.servers.values():
            if server.state is McpState.READY:
                server.refresh()
        if stopping:
            log.info("MCP servers restarted or removed by the reload: %s", ", ".join(stopping))
        self.on_change()

    async def stop(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.servers.values()))
