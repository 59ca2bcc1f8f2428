"""MCP servers: their state and tools, and calling a tool by hand (see docs/mcp.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Reply, WireModel

McpServerState = Literal["idle", "starting", "ready", "failed", "disabled", "stopped"]


class McpToolInfo(WireModel):
    name: str = Field(description="SERVER.TOOL, as chat, workflows and the policy name it.")
    description: str
    read_only_hint: bool = Field(description="The server marks the tool read-only.")
    policy: Literal["auto", "ask", "deny"] = Field(
        description="What a chat does with a call: run it, ask a person, or not offer it."
    )
    input_schema: dict[str, Any] | None = Field(
        default=None, description="The JSON Schema of its arguments (mcp.tools only)."
    )


class McpServerInfo(WireModel):
    name: str
    transport: Literal["stdio", "streamable-http", "sse"]
    state: McpServerState
    error: str | None = Field(default=None, description="Why it failed to start or last stopped.")
    tools: list[str] = Field(description="SERVER.TOOL names, while it is ready.")


class McpList(ClientMessage):
    """The configured MCP servers, their state and tool names."""

    type: Literal["mcp.list"] = "mcp.list"
    start: bool = Field(
        default=False,
        description="Start servers not started yet (they start on first use) and wait for "
        "them, bounded by each one's startup_timeout_s.",
    )


class McpListResult(Reply):
    type: Literal["mcp.list.result"] = "mcp.list.result"
    servers: list[McpServerInfo]


class McpTools(ClientMessage):
    """One server's tools with their argument schemas; starts the server if needed."""

    type: Literal["mcp.tools"] = "mcp.tools"
    server: str = Field(min_length=1, max_length=100)


class McpToolsResult(Reply):
    type: Literal["mcp.tools.result"] = "mcp.tools.result"
    server: McpServerInfo
    tools: list[McpToolInfo]


class McpCall(ClientMessage):
    """Call an MCP tool by hand (the person asking is the approval); `deny` still refuses."""

    type: Literal["mcp.call"] = "mcp.call"
    tool: str = Field(min_length=3, max_length=200, description="SERVER.TOOL")
    args: dict[str, Any] = Field(default_factory=dict)


class McpCallResult(Reply):
    type: Literal["mcp.call.result"] = "mcp.call.result"
    tool: str
    result: Any = Field(
        description='{"text", "structured"?, "truncated"?}: images and resources are described '
        "in the text, not inlined."
    )


CLIENT_MESSAGES = (McpList, McpTools, McpCall)
SERVER_MESSAGES = (McpListResult, McpToolsResult, McpCallResult)
