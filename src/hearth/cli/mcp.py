"""`hearth mcp list|tools|call`: MCP tool servers as the running gateway sees them.

Everything goes through the gateway (mcp.* messages): it owns the server processes and
connections, so the state shown is the one chat, workflows and the heartbeat use, and a call
made here runs on the same connection.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import DataDirOption, console, fail, run, with_client
from hearth.client import GatewayClient
from hearth.protocol.messages.mcp import (
    McpCall,
    McpCallResult,
    McpList,
    McpListResult,
    McpServerInfo,
    McpTools,
    McpToolsResult,
)

app = typer.Typer(
    help="MCP tool servers: their state and tools, and calling a tool by hand.",
    no_args_is_help=True,
)

_STATE_STYLE = {"ready": "green", "failed": "red", "starting": "yellow"}


def _state(server: McpServerInfo) -> str:
    style = _STATE_STYLE.get(server.state)
    state = f"[{style}]{server.state}[/]" if style else server.state
    if server.error:
        state += f": {escape(server.error)}"
    return state


@app.command("list")
def list_servers(
    start: Annotated[
        bool,
        typer.Option(
            "--start/--no-start",
            help="Start servers not used yet, to list their tools (default: start).",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """The configured MCP servers, their state and their tools."""

    async def ask(client: GatewayClient) -> McpListResult:
        return await client.request(McpList(id=client.next_id(), start=start), McpListResult)

    reply = run(with_client(data_dir, ask))
    if as_json:
        typer.echo(reply.model_dump_json(by_alias=True, exclude_none=True, exclude={"id"}))
        return
    if not reply.servers:
        console.print("no MCP servers configured ([mcp.servers.NAME] in config.toml)")
        return
    table = Table("server", "transport", "state", "tools")
    for server in reply.servers:
        table.add_row(
            server.name,
            server.transport,
            _state(server),
            escape(", ".join(t.split(".", 1)[1] for t in server.tools)),
        )
    console.print(table)


@app.command("tools")
def tools(
    server: Annotated[str, typer.Argument(help="The server's name in [mcp.servers.NAME].")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """One server's tools: name, read-only hint, policy and description."""

    async def ask(client: GatewayClient) -> McpToolsResult:
        return await client.request(McpTools(id=client.next_id(), server=server), McpToolsResult)

    reply = run(with_client(data_dir, ask))
    if as_json:
        typer.echo(reply.model_dump_json(by_alias=True, exclude_none=True, exclude={"id"}))
        return
    if reply.server.state != "ready":
        fail(f"MCP server {server!r} is {_plain(reply.server)}")
    table = Table("tool", "read-only", "policy", "description")
    for tool in reply.tools:
        table.add_row(
            tool.name,
            "yes" if tool.read_only_hint else "",
            tool.policy,
            escape(tool.description),
        )
    console.print(table)


def _plain(server: McpServerInfo) -> str:
    return server.state + (f": {server.error}" if server.error else "")


@app.command("call")
def call(
    tool: Annotated[str, typer.Argument(help="SERVER.TOOL, e.g. notes.search.")],
    args: Annotated[
        str, typer.Option("--args", help='The arguments as one JSON object, e.g. \'{"q": "x"}\'.')
    ] = "{}",
    data_dir: DataDirOption = None,
) -> None:
    """Call an MCP tool now and print its result (you are its approval; `deny` still refuses)."""
    try:
        parsed: Any = json.loads(args)
    except ValueError as exc:
        fail(f"--args is not JSON: {exc}", 2)
    if not isinstance(parsed, dict):
        fail(f"--args must be a JSON object, not {type(parsed).__name__}", 2)

    async def ask(client: GatewayClient) -> McpCallResult:
        return await client.request(
            McpCall(id=client.next_id(), tool=tool, args=parsed), McpCallResult
        )

    reply = run(with_client(data_dir, ask))
    result = reply.result
    if isinstance(result, dict) and set(result) <= {"text", "structured"} and "text" in result:
        typer.echo(result["text"])
        return
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
