"""`hearth workflow …` and `hearth approvals`: workflows from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import (
    DataDirOption,
    console,
    err_console,
    fail,
    run,
    settings_for,
    with_client,
)
from hearth.cli.notifications import line_for
from hearth.cli.prompt import StdinLines, show_question, take_back_question
from hearth.client import GatewayClient, GatewayError
from hearth.protocol import ErrorCode
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.notifications import (
    Notification,
    NotificationList,
    NotificationListResult,
)
from hearth.protocol.messages.workflows import (
    ExecutionDetail,
    WorkflowApproval,
    WorkflowApprovalRequest,
    WorkflowApprovalResolved,
    WorkflowCancel,
    WorkflowCancelled,
    WorkflowExecutionGet,
    WorkflowExecutionList,
    WorkflowExecutionListResult,
    WorkflowExecutionResult,
    WorkflowList,
    WorkflowListResult,
    WorkflowStatus,
    WorkflowTrigger,
    WorkflowTriggered,
)
from hearth.workflows.loader import load_workflow_file

app = typer.Typer(help="Run and inspect workflows.", no_args_is_help=True)

TERMINAL = {"completed", "failed", "cancelled"}
#: Notifications `show` prints for one execution (the newest, if it sent more).
NOTES_SHOWN = 100
STATUS_STYLE = {
    "completed": "green",
    "success": "green",
    "failed": "red",
    "failure": "red",
    "cancelled": "yellow",
    "paused": "cyan",
    "running": "blue",
    "skipped": "dim",
}


ExecutionArg = Annotated[
    str, typer.Argument(help="The execution id, or any unique prefix of it.", show_default=False)
]
StepArg = Annotated[str, typer.Argument(help="The gated step's id.", show_default=False)]
CommentOption = Annotated[
    str | None,
    typer.Option("--comment", "-c", help="Why; kept with the answer.", show_default=False),
]


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def parse_inputs(
    pairs: list[str], as_json: str | None, types: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """`k=v` pairs. A value for a `string` input stays text; others parse as JSON when they
    can (5, true, [1]) and stay text otherwise."""
    values: dict[str, Any] = {}
    if as_json:
        try:
            loaded = json.loads(as_json)
        except ValueError as exc:
            fail(f"--input-json is not valid JSON: {exc}", 2)
        if not isinstance(loaded, dict):
            fail("--input-json must be a JSON object", 2)
        values.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--input {pair!r} is not of the form NAME=VALUE", 2)
        if (types or {}).get(key) == "string":
            values[key] = raw
            continue
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


@app.command("list")
def list_workflows(data_dir: DataDirOption = None) -> None:
    """List the workflows the gateway knows, valid or not."""

    async def ask(client: GatewayClient) -> WorkflowListResult:
        return await client.request(WorkflowList(id=client.next_id()), WorkflowListResult)

    result = run(with_client(data_dir, ask))
    if not result.workflows:
        console.print("no workflows yet: put *.yaml files in the data directory's workflows/")
        return
    table = Table("id", "name", "inputs", "status")
    for item in result.workflows:
        inputs = ", ".join(
            f"{k}{'*' if v.required else ''}" for k, v in (item.inputs or {}).items()
        )
        state = "[green]valid[/]" if item.valid else f"[red]invalid[/]: {escape(item.error or '')}"
        table.add_row(item.id, item.name, inputs, state)
    console.print(table)


@app.command("validate")
def validate(file: Path, data_dir: DataDirOption = None) -> None:
    """Check a workflow file without a gateway; exits 1 and says what is wrong if it is bad.

    Runs the gateway loader's own checks against the data directory's config.toml: the tools
    must exist and be enabled there, literal arguments must fit them, and every input and step
    a template names must be declared.
    """
    # Imported here: the tool registry pulls in httpx, which `hearth --help` need not load.
    from hearth.mcp import McpManager
    from hearth.tools import ToolRegistry, builtin_tools
    from hearth.workflows.checks import check_workflow

    settings = settings_for(data_dir)
    tools = ToolRegistry(builtin_tools(shell_enabled=settings.tools.shell.enabled))
    # MCP tools are known only to a running server: steps naming them are warned about.
    tools.add_source(McpManager(settings.mcp, None))
    loaded = check_workflow(load_workflow_file(file), tools)
    if loaded.valid and loaded.definition is not None:
        count = len(loaded.definition.steps)
        console.print(
            f"{file}: valid ({count} step{'' if count == 1 else 's'})",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        return
    err_console.print(loaded.error, highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(1)


@app.command("run")
def run_workflow(
    workflow_id: Annotated[str, typer.Argument(help="The workflow to start.")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="NAME=VALUE (repeatable).")
    ] = None,
    input_json: Annotated[
        str | None, typer.Option("--input-json", help="All inputs as one JSON object.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow the execution until it finishes.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Start a workflow. With --wait, show each step and ask at approval gates."""
    following = _Following()

    async def go(client: GatewayClient) -> str:
        listing = await client.request(WorkflowList(id=client.next_id()), WorkflowListResult)
        declared = next((w.inputs for w in listing.workflows if w.id == workflow_id), None)
        types = {name: spec.type for name, spec in (declared or {}).items()}
        values = parse_inputs(inputs or [], input_json, types)
        reply = await client.request(
            WorkflowTrigger(id=client.next_id(), workflow_id=workflow_id, input=values or None),
            WorkflowTriggered,
        )
        console.print(f"started execution {reply.execution_id}", highlight=False)
        if not wait:
            return "running"
        following.execution_id = reply.execution_id
        return await follow(client, reply.execution_id, StdinLines(), following)

    try:
        status = run(with_client(data_dir, go))
    except KeyboardInterrupt:
        _left_running(following)
        raise typer.Exit(130) from None
    if status == "lost":
        fail(
            "lost the connection to the gateway before the execution finished; it goes on "
            "there: see `hearth workflow show ID`"
        )
    if status in {"failed", "cancelled"}:
        raise typer.Exit(1)


@dataclass
class _Following:
    """What `run --wait` is doing, so Ctrl-C can say how to pick it up again."""

    execution_id: str | None = None
    #: The step whose approval this terminal is asking for (None when not at a gate).
    gate: str | None = None
    #: True once this terminal sent its own answer to the gate.
    answered_here: bool = False


def _left_running(following: _Following) -> None:
    take_back_question(console)
    execution_id = following.execution_id
    if execution_id is None:
        err_console.print("interrupted", highlight=False)
        return
    lines = [
        f"stopped following; execution {execution_id} goes on in the gateway.",
        f"  follow it:  hearth workflow show {execution_id}",
    ]
    if following.gate is not None:
        lines.append(
            f"  answer it:  hearth workflow approve {execution_id} {following.gate} (or deny)"
        )
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


def _resolved_elsewhere(event: WorkflowStatus) -> str:
    """How the gate was answered, as far as the status event tells (it does not say who)."""
    if event.status != "cancelled":
        return "approved by another client"
    if event.error and "denied" in event.error:
        return "denied by another client"
    return "cancelled from another client"


async def follow(
    client: GatewayClient,
    execution_id: str,
    lines: StdinLines | None = None,
    following: _Following | None = None,
) -> str:
    """Print step progress and notifications until the execution ends; ask at gates.

    The question at a gate is a task next to the event loop's reading, so the connection
    stays alive while the person thinks, and an answer from another client (seen as the
    execution moving on) takes the question back.
    """
    lines = lines or StdinLines()
    state = following or _Following(execution_id=execution_id)
    # Its status events reach us without this only when this connection started or approved
    # it; subscribing first (before reading its state) leaves no gap either way.
    await client.subscribe(["workflow.status"], execution_ids=[execution_id])
    current = await client.request(
        WorkflowExecutionGet(id=client.next_id(), execution_id=execution_id),
        WorkflowExecutionResult,
    )
    if current.execution.status in TERMINAL:
        # It ended before we were listening: show what it did, notifications included.
        _print_detail(current.execution)
        _print_notes(await _notes(client, execution_id))
        return current.execution.status
    asking: asyncio.Task[None] | None = None
    try:
        async for event in client.events():
            if isinstance(event, Notification) and event.execution_id == execution_id:
                console.print(
                    "  " + line_for(event, with_origin=False), highlight=False, soft_wrap=True
                )
            if isinstance(event, WorkflowStatus) and event.execution_id == execution_id:
                at_gate = event.status == "paused" and event.waiting_for == "approval"
                if state.gate is not None and not at_gate:
                    if asking is not None and not asking.done() and not state.answered_here:
                        asking.cancel()
                        take_back_question(console)
                        console.print(f"  {_resolved_elsewhere(event)}", highlight=False)
                    state.gate = None
                for step in event.step_results or []:
                    extra = f" — {escape(step.error)}" if step.error else ""
                    console.print(f"  {step.step_id}: {_styled(step.status)}{extra}")
                if event.status in TERMINAL:
                    suffix = f": {escape(event.error)}" if event.error else ""
                    console.print(f"execution {_styled(event.status)}{suffix}")
                    return event.status
                if event.waiting_for == "timer":
                    console.print(f"  {event.current_step_id}: waiting")
            if isinstance(event, WorkflowApprovalRequest) and event.execution_id == execution_id:
                state.gate = event.step_id
                state.answered_here = False
                asking = asyncio.create_task(_ask(client, event, lines, state))
    finally:
        if asking is not None and not asking.done():
            asking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asking
    return "lost"


async def _ask(
    client: GatewayClient, event: WorkflowApprovalRequest, lines: StdinLines, state: _Following
) -> None:
    console.print(
        f"  [cyan]approval needed[/] at {event.step_id}: {escape(event.prompt or '')}",
        highlight=False,
    )
    if event.args:
        console.print_json(json.dumps(event.args))
    console.print(
        f"  answer from any client: hearth workflow approve {event.execution_id} "
        f"{event.step_id} (or deny)",
        highlight=False,
        soft_wrap=True,
    )
    lines.discard_typeahead()
    while True:
        show_question(console, "  approve? (y/N): ")
        line = await lines.readline()
        if line is None:
            take_back_question(console)
            console.print("  (no input here: waiting for an answer from another client)")
            return
        answer = line.strip().lower()
        if answer in ("y", "yes", "n", "no", ""):
            break
        console.print("  please answer y or n")
    state.answered_here = True
    try:
        await client.request(
            WorkflowApproval(
                id=client.next_id(),
                execution_id=event.execution_id,
                step_id=event.step_id,
                approved=answer in ("y", "yes"),
            ),
            WorkflowApprovalResolved,
        )
    except GatewayError as exc:
        if exc.code != ErrorCode.NO_PENDING_APPROVAL:
            raise
        console.print("  another client answered first", highlight=False)


def _print_detail(execution: ExecutionDetail) -> None:
    console.print(
        f"execution {execution.id}  workflow {execution.workflow_id}  "
        f"{_styled(execution.status)}"
        + (f" (waiting for {execution.waiting_for})" if execution.waiting_for else ""),
        highlight=False,
    )
    if execution.error:
        console.print(f"error: {execution.error}", highlight=False, markup=False)
    table = Table("#", "step", "try", "status", "output / error", "finished")
    for step in execution.steps:
        shown = step.error or (json.dumps(step.output)[:80] if step.output is not None else "")
        finished = step.finished_at.strftime("%H:%M:%S") if step.finished_at else ""
        table.add_row(
            str(step.seq),
            step.step_id,
            str(step.attempt),
            _styled(step.status),
            escape(shown),
            finished,
        )
    console.print(table)


@app.command("show")
def show(
    execution_id: ExecutionArg,
    data_dir: DataDirOption = None,
) -> None:
    """Show one execution with every step run and the notifications it sent."""

    async def ask(client: GatewayClient) -> tuple[ExecutionDetail, NotificationListResult]:
        result = await client.request(
            WorkflowExecutionGet(id=client.next_id(), execution_id=execution_id),
            WorkflowExecutionResult,
        )
        return result.execution, await _notes(client, result.execution.id)

    detail, notes = run(with_client(data_dir, ask))
    _print_detail(detail)
    _print_notes(notes)


async def _notes(client: GatewayClient, execution_id: str) -> NotificationListResult:
    return await client.request(
        NotificationList(id=client.next_id(), execution_id=execution_id, limit=NOTES_SHOWN),
        NotificationListResult,
    )


def _print_notes(notes: NotificationListResult) -> None:
    if notes.notifications:
        console.print("notifications:")
        for item in reversed(notes.notifications):
            console.print("  " + line_for(item, with_origin=False), highlight=False, soft_wrap=True)


def _answer(
    execution_id: str, step_id: str, approved: bool, comment: str | None, data_dir: Path | None
) -> None:
    async def send(client: GatewayClient) -> WorkflowApprovalResolved:
        return await client.request(
            WorkflowApproval(
                id=client.next_id(),
                execution_id=execution_id,
                step_id=step_id,
                approved=approved,
                comment=comment,
            ),
            WorkflowApprovalResolved,
        )

    reply = run(with_client(data_dir, send))
    console.print(
        f"{'approved' if approved else 'denied'} {step_id} of {reply.execution_id}",
        highlight=False,
    )


@app.command("approve")
def approve(
    execution_id: ExecutionArg,
    step_id: StepArg,
    comment: CommentOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Approve a gated step (the first answer from any client wins)."""
    _answer(execution_id, step_id, True, comment, data_dir)


@app.command("deny")
def deny(
    execution_id: ExecutionArg,
    step_id: StepArg,
    comment: CommentOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Deny a gated step; the execution is cancelled with your reason."""
    _answer(execution_id, step_id, False, comment, data_dir)


@app.command("cancel")
def cancel(execution_id: ExecutionArg, data_dir: DataDirOption = None) -> None:
    """Stop a running or paused execution (a running step is interrupted)."""

    async def send(client: GatewayClient) -> WorkflowCancelled:
        return await client.request(
            WorkflowCancel(id=client.next_id(), execution_id=execution_id), WorkflowCancelled
        )

    reply = run(with_client(data_dir, send))
    console.print(f"execution {reply.execution_id}: {_styled(reply.status)}", highlight=False)


@app.command("history")
def history(
    workflow_id: Annotated[str | None, typer.Argument(help="Only this workflow.")] = None,
    status: Annotated[
        Literal["running", "paused", "completed", "failed", "cancelled"] | None,
        typer.Option(help="Only this status."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """Recent executions, newest first."""

    async def ask(client: GatewayClient) -> WorkflowExecutionListResult:
        return await client.request(
            WorkflowExecutionList(
                id=client.next_id(),
                workflow_id=workflow_id,
                status=status,
                limit=limit,
            ),
            WorkflowExecutionListResult,
        )

    result = run(with_client(data_dir, ask))
    table = Table("execution", "workflow", "status", "step", "trigger", "started")
    table.columns[0].overflow = "fold"
    for item in result.executions:
        table.add_row(
            item.id,
            item.workflow_id,
            _styled(item.status),
            item.current_step_id or "",
            item.triggered_by,
            item.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


def _print_history(result: ApprovalListResult) -> None:
    """One row per answered approval: what, outcome, when, who, through what, from where."""
    if not result.approvals:
        console.print("no approval has been answered yet")
        return
    table = Table("when", "kind", "what", "outcome", "who", "channel", "from")
    for item in result.approvals:
        who = item.answered_by
        resolved = item.resolved_at
        when = resolved.astimezone().strftime("%Y-%m-%d %H:%M:%S") if resolved else ""
        table.add_row(
            when,
            item.kind,
            escape(item.title),
            item.status or "",
            escape(" / ".join(p for p in (who.client, who.user) if p)) if who else "-",
            (who.channel or "") if who else "",
            (who.address or "") if who else "",
        )
    console.print(table)


def approvals(
    data_dir: DataDirOption = None,
    history: Annotated[
        bool, typer.Option("--history", help="Show answered approvals and who answered them.")
    ] = False,
    limit: Annotated[int, typer.Option(help="History entries (newest first).")] = 50,
) -> None:
    """List everything waiting for a person's approval.

    With --history: the answered ones, with who answered, how and from where.
    """

    async def ask(client: GatewayClient) -> ApprovalListResult:
        message = ApprovalList(id=client.next_id(), history=history or None)
        if history:
            message.limit = limit
        return await client.request(message, ApprovalListResult)

    result = run(with_client(data_dir, ask))
    if history:
        _print_history(result)
        return
    if not result.approvals:
        console.print("nothing is waiting for approval")
        return
    table = Table("kind", "what", "where", "asked", "answer with")
    table.columns[4].overflow = "fold"
    for item in result.approvals:
        # An interrupted step is answered like a gate: approve runs it again, deny fails it.
        of_workflow = item.kind in ("workflow", "interrupted")
        where = f"{item.workflow_id} / {item.step_id}" if of_workflow else (item.tool_name or "")
        answer = (
            f"hearth workflow approve {item.execution_id} {item.step_id}" if of_workflow else ""
        )
        table.add_row(
            item.kind,
            item.title,
            where,
            item.requested_at.astimezone().strftime("%H:%M:%S"),
            answer,
        )
    console.print(table)
