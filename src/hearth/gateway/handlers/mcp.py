"""mcp.list, mcp.tools and mcp.call: MCP servers as the running gateway sees them."""

from __future__ import annotations

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.mcp import McpManager, McpServer, McpState, McpTool
from hearth.protocol import ErrorCode, ProtocolError
from hearth.protocol.messages.mcp import (
    McpCall,
    McpCallResult,
    McpList,
    McpListResult,
    McpServerInfo,
    McpToolInfo,
    McpTools,
    McpToolsResult,
)
from hearth.tools import ToolArgumentsError, ToolContext, ToolError
from hearth.tools.policy import decide


def server_info(server: McpServer) -> McpServerInfo:
    return McpServerInfo(
        name=server.name,
        transport="stdio" if server.transport == "stdio" else server.transport,
        state=server.state.value,
        error=server.error if server.state is not McpState.READY else None,
        tools=[tool.name for tool in server.tools],
    )


def server_infos(manager: McpManager | None) -> list[McpServerInfo] | None:
    """For `gateway.status`: None when no server is configured."""
    if manager is None or not manager.servers:
        return None
    return [server_info(manager.servers[name]) for name in sorted(manager.servers)]


def _manager(ctx: HandlerContext) -> McpManager:
    if ctx.state.mcp is None:
        raise ProtocolError(ErrorCode.INTERNAL_ERROR, "this gateway has no MCP support wired")
    return ctx.state.mcp


def _server(manager: McpManager, name: str) -> McpServer:
    return manager.get(name)


@handles(McpList)
async def mcp_list(message: McpList, ctx: HandlerContext) -> McpListResult:
    manager = _manager(ctx)
    if message.start:
        await manager.prepare()
    return McpListResult(id=message.id, servers=server_infos(manager) or [])


@handles(McpTools)
async def mcp_tools(message: McpTools, ctx: HandlerContext) -> McpToolsResult:
    server = _server(_manager(ctx), message.server)
    await server.ready()
    policy = ctx.state.settings.tools.policy
    return McpToolsResult(
        id=message.id,
        server=server_info(server),
        tools=[
            McpToolInfo(
                name=tool.name,
                description=tool.description,
                read_only_hint=tool.read_only_hint,
                policy=decide(tool, policy),
                input_schema=tool.json_schema(),
            )
            for tool in server.tools
        ],
    )


@handles(McpCall)
async def mcp_call(message: McpCall, ctx: HandlerContext) -> McpCallResult:
    manager = _manager(ctx)
    server_name, dot, tool_name = message.tool.partition(".")
    if not dot or not tool_name:
        raise ProtocolError(
            ErrorCode.INVALID_INPUT, f"{message.tool!r}: name the tool as SERVER.TOOL"
        )
    server = _server(manager, server_name)
    await server.ready()
    tool = next((t for t in server.tools if t.name == message.tool), None)
    if not isinstance(tool, McpTool):
        problem = server.problem()
        known = ", ".join(t.name for t in server.tools) or "none"
        raise ProtocolError(
            ErrorCode.TOOL_NOT_FOUND,
            problem or f"MCP server {server_name!r} has no tool {tool_name!r}; its tools: {known}",
        )
    if decide(tool, ctx.state.settings.tools.policy) == "deny":
        raise ProtocolError(
            ErrorCode.TOOL_DENIED,
            f"{tool.name} is denied by [tools] policy in config.toml",
        )
    context = ToolContext(
        workspace=ctx.state.settings.workspace_dir,
        bus=ctx.state.bus,
        source=f"mcp.call:{ctx.connection.id}",
    )
    try:
        args = tool.parse_args(message.args)
        result = await tool.run(args, context)
    except ToolArgumentsError as exc:
        raise ProtocolError(ErrorCode.INVALID_INPUT, str(exc), {"errors": exc.errors}) from None
    except ToolError as exc:
        raise ProtocolError(ErrorCode.TOOL_FAILED, str(exc)) from None
    # The tool runs here, not through the registry, so its result is scrubbed here: an MCP
    # server is given keys from the secret store and may echo them.
    result = ctx.state.redactor.value(result)
    return McpCallResult(id=message.id, tool=tool.name, result=result)
