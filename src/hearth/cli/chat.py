"""`hearth chat`: talk to the agent, with streamed replies and tool approvals inline."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import DataDirOption, console, err_console, run, with_client
from hearth.cli.prompt import StdinLines, show_question, take_back_question
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


@dataclass
class _Gate:
    """One tool call waiting for approval: whether this terminal answered it."""

    tool_call_id: str
    answered_here: bool = False
    settled: bool = False


async def ask_approval(
    client: GatewayClient, event: ToolApprovalRequest, lines: StdinLines, gate: _Gate
) -> None:
    """Ask y/n/always without blocking the loop; the caller cancels it when another client
    answers first."""
    console.print(
        f"\n[cyan]approval needed[/]: {event.tool_name} ({event.risk} risk)", highlight=False
    )
    console.print_json(json.dumps(event.args))
    lines.discard_typeahead()
    while True:
        show_question(console, "  allow? y = yes, n = no, a = always this session: ")
        line = await lines.readline()
        if line is None:
            take_back_question(console)
            console.print("  (no input here: answer from another client, or it times out)")
            return
        answer = line.strip().lower()
        if answer in ("y", "yes", "n", "no", "a", "always"):
            break
        console.print("  please answer y, n or a")
    gate.answered_here = True
    try:
        await client.request(
            ToolApprovalResponse(
                id=client.next_id(),
                tool_call_id=event.tool_call_id,
                approved=answer in ("y", "yes", "a", "always"),
                session_approve=answer in ("a", "always"),
            ),
            ToolApprovalResolved,
        )
    except GatewayError as exc:
        console.print(f"  ({escape(exc.message)})", highlight=False)


def _settle(gate: _Gate | None, asking: asyncio.Task[None] | None, how: str) -> None:
    """The call was answered (or ended) elsewhere: take the question back and say so."""
    if gate is None or gate.settled:
        return
    gate.settled = True
    if gate.answered_here or asking is None or asking.done():
        return
    asking.cancel()
    take_back_question(console)
    console.print(f"  {how}", highlight=False)


async def exchange(
    client: GatewayClient,
    content: str,
    session_id: str | None,
    model: str | None,
    lines: StdinLines | None = None,
) -> tuple[str, str]:
    """Send one message and print the streamed reply; returns (session id, final status)."""
    lines = lines or StdinLines()
    start = await client.request(
        ChatSend(id=client.next_id(), content=content, session_id=session_id, model=model),
        ChatStreamStart,
    )
    gate: _Gate | None = None
    asking: asyncio.Task[None] | None = None
    try:
        async for event in client.events():
            if getattr(event, "request_id", None) != start.request_id:
                continue
            call_id = getattr(event, "tool_call_id", None)
            mine = gate is not None and call_id == gate.tool_call_id
            if event.type == "chat.stream.delta":
                console.print(getattr(event, "delta", ""), end="", highlight=False, markup=False)
            elif isinstance(event, ToolApprovalRequest):
                gate = _Gate(event.tool_call_id)
                asking = asyncio.create_task(ask_approval(client, event, lines, gate))
            elif event.type == "tool.call":
                if mine:
                    _settle(gate, asking, "approved by another client")
                console.print(f"\n[dim]→ {getattr(event, 'tool_name', '')}[/]", highlight=False)
            elif event.type == "tool.error":
                if mine and getattr(event, "denied", False):
                    why = getattr(event, "error", "")
                    _settle(
                        gate,
                        asking,
                        "denied by another client" if "person" in why else f"denied: {why}",
                    )
                console.print(f"\n[red]✗ {escape(getattr(event, 'error', ''))}[/]", highlight=False)
            elif isinstance(event, Error):
                err_console.print(f"\n[red]error:[/] {escape(event.message)}", highlight=False)
            elif isinstance(event, ChatStreamEnd):
                _settle(gate, asking, "the reply ended before an answer")
                console.print()
                return start.session_id, event.status
    finally:
        if asking is not None and not asking.done():
            asking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asking
    return start.session_id, "error"


#: Sessions `/sessions` shows: the most recent ones (older ones stay on the dashboard's list).
SESSIONS_SHOWN = 50


async def _sessions(client: GatewayClient) -> None:
    listing = await client.request(
        SessionList(id=client.next_id(), limit=SESSIONS_SHOWN), SessionListResult
    )
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
    older = listing.total - len(listing.sessions)
    if older > 0:
        console.print(
            f"({older} older sessions not shown: the dashboard's Chat page lists them all, "
            "and `hearth chat -s KEY` opens one by its key)",
            highlight=False,
        )


async def _interactive(client: GatewayClient, session_id: str | None, model: str | None) -> None:
    console.print(f"Hearth chat — {HELP}", highlight=False)
    lines = StdinLines()
    while True:
        show_question(console, "you> ")
        line = await lines.readline()
        if line is None:
            console.print()
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
            used, status = await exchange(client, text, session_id, model, lines)
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

    try:
        status = run(with_client(data_dir, go))
    except KeyboardInterrupt:
        take_back_question(console)
        console.print(
            "stopped; a reply under way goes on in the gateway, and a tool call waiting for "
            "approval can still be answered from another client (`hearth approvals` lists it)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    if status != "completed":
        raise typer.Exit(1)
