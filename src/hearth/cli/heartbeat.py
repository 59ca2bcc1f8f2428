"""`hearth heartbeat …` and `hearth init`: set up and watch the heartbeat.

Descriptions, details and reasons come from the checklist file or from a model, so everything
shown from them is escaped: a `[bold]` in a checklist item must print as text, not as markup.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import DataDirOption, console, fail, run, settings_for, with_client
from hearth.cli.schedule import parse_active_hours
from hearth.client import GatewayClient
from hearth.heartbeat.checklist import EXAMPLE
from hearth.protocol.messages.heartbeat import (
    HeartbeatAlertList,
    HeartbeatAlertListResult,
    HeartbeatCheck,
    HeartbeatConfigure,
    HeartbeatConfigured,
    HeartbeatRun,
    HeartbeatRunResult,
    HeartbeatStatus,
    HeartbeatStatusResult,
)

app = typer.Typer(
    help="The heartbeat: a model reads HEARTBEAT.md on an interval and alerts you only when "
    "something needs you.",
    no_args_is_help=True,
)

#: A run may wait for a chat (2 x 60 s by default) and then for the model (120 s).
RUN_TIMEOUT_S = 900.0
STATUS_STYLE = {"ok": "green", "skipped": "yellow", "error": "red", "running": "cyan"}


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    local = moment.astimezone()
    if local.utcoffset() != moment.utcoffset():
        shown += f" ({local.strftime('%H:%M')} here)"
    return shown


def _minutes(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}h"
    if value == int(value):
        return f"{int(value)}m"
    return f"{value * 60:g}s"


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _checks_table(checks: list[HeartbeatCheck]) -> Table:
    table = Table("", "item", "details")
    for check in checks:
        mark = "[bold red]needs you[/]" if check.action_needed else "[green]fine[/]"
        table.add_row(mark, escape(check.description), escape(check.details or ""))
    return table


@app.command("configure")
def configure(
    path: Annotated[
        Path | None,
        typer.Option(
            "--path", help="The checklist file [default: HEARTBEAT.md in the data directory]."
        ),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option(help='Minutes (30) or a duration ("30m") [default: the file\'s, or 30].'),
    ] = None,
    tz: Annotated[
        str | None, typer.Option("--tz", help="IANA zone for active hours [default: host's].")
    ] = None,
    active_hours: Annotated[
        str | None,
        typer.Option(
            "--active-hours", help='Window such as 09:00-18:00, or "always" for no window.'
        ),
    ] = None,
    days: Annotated[str | None, typer.Option(help="Days, e.g. 1-5 (Monday = 1).")] = None,
    enable: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Run on schedule, or pause.", show_default=False),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set up the heartbeat (again): what you leave out comes from the file's front matter."""
    message = HeartbeatConfigure(id="configure")
    if path is not None:
        # Relative to where the person typed the command, not to the gateway's data directory.
        message.heartbeat_path = str(path.expanduser().absolute())
    if interval is not None:
        message.interval = interval
    if tz is not None:
        message.timezone = tz
    if active_hours is not None and active_hours.strip().lower() in ("always", "none"):
        if days is not None:
            fail("--days needs a window; use --active-hours 00:00-00:00 --days 1-5", 2)
        message.active_hours = None
    elif active_hours is not None or days is not None:
        message.active_hours = parse_active_hours(active_hours, days)
    if enable is not None:
        message.enabled = enable

    async def send(client: GatewayClient) -> HeartbeatConfigured:
        message.id = client.next_id()
        return await client.request(message, HeartbeatConfigured)

    reply = run(with_client(data_dir, send))
    console.print(
        f"heartbeat configured (schedule {reply.schedule_id}); next run {_when(reply.next_run)}",
        highlight=False,
    )


@app.command("run")
def run_now(data_dir: DataDirOption = None) -> None:
    """Check the list now (also outside active hours) and show what the model found."""

    async def send(client: GatewayClient) -> HeartbeatRunResult:
        client.request_timeout_s = RUN_TIMEOUT_S
        return await client.request(HeartbeatRun(id=client.next_id()), HeartbeatRunResult)

    console.print("checking HEARTBEAT.md …", highlight=False)
    result = run(with_client(data_dir, send))
    line = f"run {result.run_id or ''}: {_styled(result.status)}"
    if result.reason:
        line += f" — {escape(result.reason)}"
    console.print(line, highlight=False)
    if result.deferred:
        console.print(f"(waited {result.deferred} time(s) for a chat to finish)", highlight=False)
    if result.checks:
        console.print(_checks_table(result.checks))
    if result.alerted:
        console.print("[bold]alert sent[/] to every connected client", highlight=False)
    if result.status == "error":
        raise typer.Exit(1)


@app.command("status")
def status(data_dir: DataDirOption = None) -> None:
    """How the heartbeat is set up, when it runs next and how its last run went."""

    async def ask(client: GatewayClient) -> HeartbeatStatusResult:
        return await client.request(HeartbeatStatus(id=client.next_id()), HeartbeatStatusResult)

    result = run(with_client(data_dir, ask))
    if not result.configured:
        state = "[yellow]not configured[/] (hearth heartbeat configure)"
    else:
        state = "[green]enabled[/]" if result.enabled else "[yellow]paused[/]"
    console.print(f"heartbeat  {state}", highlight=False)
    console.print(f"  file      {escape(result.heartbeat_path)}", highlight=False)
    console.print(f"  every     {_minutes(result.interval)} in {result.timezone}", highlight=False)
    if result.active_hours:
        hours = result.active_hours
        shown = f"{hours.start}-{hours.end}"
        if hours.days_of_week:
            shown += f" on days {','.join(map(str, hours.days_of_week))}"
        console.print(f"  active    {shown}", highlight=False)
    console.print(f"  next run  {_when(result.next_run)}", highlight=False)
    last = result.last_run
    if last is None:
        console.print("  last run  —", highlight=False)
    else:
        line = f"  last run  {_when(last.started_at)} {_styled(last.status)} ({last.trigger})"
        if last.alerted:
            line += ", alert sent"
        if last.reason:
            line += f" — {escape(last.reason)}"
        console.print(line, highlight=False)
    if result.consecutive_errors:
        console.print(
            f"  [red]{result.consecutive_errors} failed run(s) in a row[/]", highlight=False
        )


@app.command("alerts")
def alerts(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """Alerts the heartbeat sent, newest first (to catch up on what you missed)."""

    async def ask(client: GatewayClient) -> HeartbeatAlertListResult:
        return await client.request(
            HeartbeatAlertList(id=client.next_id(), limit=limit), HeartbeatAlertListResult
        )

    result = run(with_client(data_dir, ask))
    if not result.alerts:
        console.print("no heartbeat alerts yet", highlight=False)
        return
    table = Table("time", "what")
    for alert in result.alerts:
        if alert.kind == "failing":
            what = f"[red]heartbeat failing[/]: {escape(alert.message or '')}"
        else:
            what = "\n".join(
                escape(c.description) + (f" — {escape(c.details)}" if c.details else "")
                for c in alert.checks
            )
        table.add_row(_when(alert.timestamp), what)
    console.print(table)


def init(data_dir: DataDirOption = None) -> None:
    """Write an example HEARTBEAT.md into the data directory (never over an existing one)."""
    settings = settings_for(data_dir)
    path = settings.heartbeat_path
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(EXAMPLE)
    except FileExistsError:
        console.print(f"{escape(str(path))} already exists; left as it is.", highlight=False)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    else:
        console.print(f"wrote an example checklist to {escape(str(path))}", highlight=False)
    steps = ["edit HEARTBEAT.md: one `- [ ]` line per thing to keep an eye on"]
    if settings.models.default is None:
        steps.append(
            f'choose a model: add `[models] default = "openai:gpt-4o-mini"` (or '
            f'"ollama:llama3.2") to {settings.config_path}'
        )
    steps += [
        "start the gateway: hearth serve",
        "turn the heartbeat on: hearth heartbeat configure (try it now: hearth heartbeat run)",
    ]
    console.print("next steps:", highlight=False)
    for number, step in enumerate(steps, start=1):
        console.print(f"  {number}. {escape(step)}", highlight=False)
