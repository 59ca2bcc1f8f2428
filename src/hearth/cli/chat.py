"""`hearth chat`: talk to the agent, with streamed replies and tool approvals inline."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import DataDirOption, console, err_console, run, with_client
from hearth.client import GatewayClient, GatewayError
from hearth.protocol import Error
from hearth.protocol.messages.chat import (
    ChatSend,
    ChatStreamEnd,
    ChatStreamStart,
    SessionList,
    SessionListResult,
    ToolApprovalRequest,
    ToolApprovalResolved,
    ToolApprovalResponse,
)

HELP = "commands: /new (fresh session), /sessions, /model NAME, /quit"


async def ask_approval(client: GatewayClient, event: ToolApprovalRequest) -> None:
    console.print(
        f"\n[cyan]approval needed[/]: {event.tool_name} ({event.risk} risk)", highlight=False
    )
    console.print_json(json.dumps(event.args))
    if not sys.stdin.isatty():
        console.print("  (no terminal to ask on: answer from another client, or it times out)")
        return
    answer = await asyncio.to_thread(input, "  allow? [y]es / [n]o / [a]lways this session: ")
    answer = answer.strip().lower()
    approved = answer in ("y", "yes", "a", "always")
    try:
        await client.request(
            ToolApprovalResponse(
                id=client.next_id(),
                tool_call_id=event.tool_call_id,
                approved=approved,
                session_approve=answer in ("a", "always"),
            ),
            ToolApprovalResolved,
        )
    except GatewayError as exc:
        console.print(f"  ({escape(exc.message)})", highlight=False)


async def exchange(
    client: GatewayClient, content: str, session_id: str | None, model: str | None
) -> tuple[str, str]:
    """Send one message and print the streamed reply; returns (session id, final status)."""
    start = await client.request(
        ChatSend(id=client.next_id(), content=content, session_id=session_id, model=model),
        ChatStreamStart,
    )
    async for event in client.events():
        if getattr(event, "request_id", None) != start.request_id:
            continue
        if event.type == "chat.stream.delta":
            console.print(getattr(event, "delta", ""), end="", highlight=False, markup=False)
        elif isinstance(event, ToolApprovalRequest):
            await ask_approval(client, event)
        elif event.type == "tool.call":
            console.print(f"\n[dim]→ {getattr(event, 'tool_name', '')}[/]", highlight=False)
        elif event.type == "tool.error":
            console.print(f"\n[red]✗ {escape(getattr(event, 'error', ''))}[/]", highlight=False)
        elif isinstance(event, Error):
            err_console.print(f"\n[red]error:[/] {escape(event.message)}", highlight=False)
        elif isinstance(event, ChatStreamEnd):
            console.print()
            return start.session_id, event.status
    return start.session_id, "error"


async def _sessions(client: GatewayClient) -> None:
    listing = await client.request(SessionList(id=client.next_id()), SessionListResult)
    table = Table("session", "title", "model", "messages", "updated")
    for item in listing.sessions:
        table.add_row(
            item.session_key,
            item.title or "",
            item.model,
            str(item.message_count),
            item.updated_at.astimezone().strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


async def _interactive(client: GatewayClient, session_id: str | None, model: str | None) -> None:
    console.print(f"Hearth chat — {HELP}", highlight=False)
    while True:
        try:
            line = await asyncio.to_thread(input, "you> ")
        except EOFError:
            return
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return
        if text == "/new":
            session_id = None
            console.print("(new session)")
            continue
        if text == "/sessions":
            await _sessions(client)
            continue
        if text.startswith("/model"):
            model = text.partition(" ")[2].strip() or None
            console.print(f"(model: {model or 'default'})", highlight=False)
            continue
        if text.startswith("/"):
            console.print(HELP)
            continue
        try:
            used, status = await exchange(client, text, session_id, model)
            # A new session whose first reply failed is not kept by the gateway.
            session_id = None if session_id is None and status == "error" else used
        except GatewayError as exc:
            err_console.print(f"[red]error:[/] {escape(exc.message)}", highlight=False)


def chat(
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message, print the reply.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Continue a session (id or key).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="PROVIDER:MODEL for this chat.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Chat with the agent. Tool calls that need approval are asked inline (y/n/always)."""

    async def go(client: GatewayClient) -> str:
        if message is not None:
            _session, status = await exchange(client, message, session, model)
            return status
        await _interactive(client, session, model)
        return "completed"

    status = run(with_client(data_dir, go))
    if status != "completed":
        raise typer.Exit(1)
