"""Model Context Protocol servers as a source of tools (see docs/mcp.md).

Each configured server becomes an `McpServer` that connects lazily, keeps its tool list, and
is restarted with backoff when it dies; the `McpManager` holds them and lends their tools to
the shared `ToolRegistry` as `SERVER.TOOL`, so chat, workflows and the heartbeat call them
under the same policy and approvals as built-in tools. The official `mcp` SDK is imported only
when a server is connected, so a gateway without MCP servers never loads it.
"""

from __future__ import annotations

from hearth.mcp.manager import McpManager, McpServerNotFoundError
from hearth.mcp.server import McpServer
from hearth.mcp.state import McpState
from hearth.mcp.tool import McpTool

__all__ = ["McpManager", "McpServer", "McpServerNotFoundError", "McpState", "McpTool"]
