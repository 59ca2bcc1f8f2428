"""`hearth schedule …`: keep workflows on a schedule from the command line."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import DataDirOption, console, fail, run, with_client
from hearth.cli.workflow import parse_inputs
from hearth.client import GatewayClient
from hearth.protocol.base import Reply
from hearth.protocol.messages.schedules import (
    ActiveHoursSpec,
    ScheduleCreate,
    ScheduleCreated,
    ScheduleDelete,
    ScheduleDeleted,
    ScheduleInfo,
    ScheduleList,
    ScheduleListResult,
    SchedulePreview,
    SchedulePreviewResult,
    ScheduleRuns,
    ScheduleRunsResult,
    ScheduleTrigger,
    ScheduleTriggered,
    ScheduleUpdate,
    ScheduleUpdated,
)

#: Options `add` and `preview` share: a preview must read a schedule exactly as `add` would.
ZoneOption = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help="IANA zone (default: `timezone` in config.toml, else the gateway host's zone).",
    ),
]
ActiveHoursOption = Annotated[
    str | None, typer.Option("--active-hours", help="Window, e.g. 09:00-18:00.")
]
DaysOption = Annotated[str | None, typer.Option(help="Days, e.g. 1-5 (Monday = 1).")]

app = typer.Typer(help="Run workflows on a schedule.", no_args_is_help=True)

RUN_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow", "missed": "magenta"}


def parse_days(text: str) -> list[int]:
    """ "1-5", "1,3,5", "6-7" → ISO weekdays (Monday = 1)."""
    days: set[int] = set()
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        try:
            start = int(low)
            end = int(high) if sep else start
        except ValueError:
            fail(f"--days {text!r}: use numbers 1-7 (Monday = 1), e.g. 1-5 or 1,3,5", 2)
        if not (1 <= start <= end <= 7):
            fail(f"--days {text!r}: days run from 1 (Monday) to 7 (Sunday)", 2)
        days.update(range(start, end + 1))
    return sorted(days)


def parse_active_hours(text: str | None, days: str | None) -> ActiveHoursSpec | None:
    if text is None:
        if days is not None:
            # 00:00-00:00 is the whole day (see ActiveHours), limited to these days.
            return ActiveHoursSpec(start="00:00", end="00:00", days_of_week=parse_days(days))
        return None
    start, sep, end = text.partition("-")
    if not sep:
        fail(f"--active-hours {text!r}: use START-END such as 09:00-18:00", 2)
    return ActiveHoursSpec(
        start=start.strip(), end=end.strip(), days_of_week=parse_days(days) if days else None
    )


def _when(moment: datetime | None, tz_name: str) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone()
    shown = moment.strftime("%Y-%m-%d %H:%M:%S %Z")
    if local.utcoffset() != moment.utcoffset():
        shown += f" ({local.strftime('%H:%M %Z')} here)"
    return shown


def _trigger(item: ScheduleInfo) -> str:
    if item.cron_expression:
        return f"cron {item.cron_expression}"
    if item.every:
        return f"every {item.every}"
    return f"at {item.at.isoformat() if item.at else '?'}"


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the schedule.", show_default=False)],
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="Workflow id to run.")],
    cron: Annotated[str | None, typer.Option(help='Cron expression, e.g. "30 8 * * 1-5".')] = None,
    every: Annotated[str | None, typer.Option(help='Interval, e.g. "15m".')] = None,
    at: Annotated[str | None, typer.Option(help="Once, at an ISO time.")] = None,
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="NAME=VALUE (repeatable).")
    ] = None,
    tz: ZoneOption = None,
    active_hours: ActiveHoursOption = None,
    days: DaysOption = None,
    max_runs: Annotated[
        int | None,
        typer.Option("--max-runs", min=1, help="Stop after this many runs (default: no limit)."),
    ] = None,
    overlap: Annotated[
        Literal["skip", "allow"],
        typer.Option(help="Whether a tick starts a run while the previous one still runs."),
    ] = "skip",
    misfire: Annotated[
        Literal["run_once", "skip"],
        typer.Option(help="After downtime: one catch-up run, or skip the missed ticks."),
    ] = "run_once",
    data_dir: DataDirOption = None,
) -> None:
    """Create a schedule (exactly one of --cron, --every, --at)."""
    chosen = [flag for flag, value in (("--cron", cron), ("--every", every), ("--at", at)) if value]
    if len(chosen) != 1:
        fail("give exactly one of --cron, --every or --at", 2)
    values = parse_inputs(inputs or [], None)
    message = ScheduleCreate(
        id="create",
        name=name,
        cron_expression=cron,
        every=every,
        at=at,
        timezone=tz,
        workflow_id=workflow,
        input=values or None,
        active_hours=parse_active_hours(active_hours, days),
        max_runs=max_runs,
        overlap=overlap,
        misfire=misfire,
    )

    async def send(client: GatewayClient) -> ScheduleCreated:
        message.id = client.next_id()
        return await client.request(message, ScheduleCreated)

    reply = run(with_client(data_dir, send))
    console.print(
        f"schedule {reply.schedule_id} created; next run {_when(reply.next_run, tz or '')}",
        highlight=False,
    )


@app.command("preview")
def preview(
    cron: Annotated[str | None, typer.Option(help='Cron expression, e.g. "30 8 * * 1-5".')] = None,
    every: Annotated[str | None, typer.Option(help='Interval, e.g. "15m".')] = None,
    at: Annotated[str | None, typer.Option(help="Once, at an ISO time.")] = None,
    tz: ZoneOption = None,
    active_hours: ActiveHoursOption = None,
    days: DaysOption = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Start after this ISO time (without an offset: in the zone); default now.",
        ),
    ] = None,
    count: Annotated[int, typer.Option(help="How many ticks to show, 1 to 100.")] = 10,
    data_dir: DataDirOption = None,
) -> None:
    """Show the next ticks a schedule would fire, as the gateway's scheduler plans them
    (daylight-saving changes and active hours included). Nothing is saved."""
    chosen = [flag for flag, value in (("--cron", cron), ("--every", every), ("--at", at)) if value]
    if len(chosen) != 1:
        fail("give exactly one of --cron, --every or --at", 2)
    message = SchedulePreview(
        id="preview",
        cron_expression=cron,
        every=every,
        at=at,
        timezone=tz,
        active_hours=parse_active_hours(active_hours, days),
        from_=start,
        count=count,
    )

    async def send(client: GatewayClient) -> SchedulePreviewResult:
        message.id = client.next_id()
        return await client.request(message, SchedulePreviewResult)

    reply = run(with_client(data_dir, send))
    if not reply.ticks:
        console.print("no ticks: this trigger never fires after that time", highlight=False)
        return
    table = Table(f"local ({reply.timezone})", "UTC", "note")
    for tick in reply.ticks:
        table.add_row(
            tick.local.isoformat(),
            tick.at.strftime("%Y-%m-%d %H:%M:%S"),
            "skipped: outside the active hours" if tick.skipped else "",
        )
    console.print(table)


async def _list(client: GatewayClient) -> list[ScheduleInfo]:
    """Every schedule, one page after another (the gateway answers a page at a time)."""
    items: list[ScheduleInfo] = []
    cursor: str | None = None
    while True:
        page = await client.request(
            ScheduleList(id=client.next_id(), limit=1000, cursor=cursor), ScheduleListResult
        )
        items.extend(page.schedules)
        cursor = page.next_cursor
        if cursor is None:
            return items


@app.command("list")
def list_schedules(data_dir: DataDirOption = None) -> None:
    """All schedules, with the next run in the schedule's zone (and yours when different)."""
    schedules = run(with_client(data_dir, _list))
    if not schedules:
        console.print("no schedules yet: hearth schedule add NAME --every 15m --workflow ID")
        return
    table = Table("id", "name", "trigger", "zone", "state", "next run", "last run", "runs")
    for column in (0, 3):
        table.columns[column].no_wrap = True
        table.columns[column].min_width = 8 if column == 0 else 13
    for item in schedules:
        last = ""
        if item.last_run:
            style = RUN_STYLE.get(item.last_run.status, "")
            last = f"[{style}]{item.last_run.status}[/]" if style else item.last_run.status
        runs = f"{item.run_count}" + (f"/{item.max_runs}" if item.max_runs else "")
        table.add_row(
            item.id[:8],
            item.name,
            _trigger(item),
            item.timezone,
            item.state,
            _when(_will_fire(item), item.timezone),
            last,
            runs,
        )
    console.print(table)


def _will_fire(item: ScheduleInfo) -> datetime | None:
    """The next run a person cares about: with active hours, the first tick inside them."""
    if item.active_hours and item.next_run is not None:
        return item.next_active_run
    return item.next_run


def matching(items: list[ScheduleInfo], ref: str) -> list[ScheduleInfo]:
    """The schedules `ref` may mean: the one with that full id, else every schedule with that
    name or whose id starts with it (one of them is an answer, several are ambiguous)."""
    exact = [s for s in items if s.id == ref]
    if exact:
        return exact
    return [s for s in items if s.name == ref or s.id.startswith(ref)]


async def _resolve(client: GatewayClient, ref: str) -> ScheduleInfo:
    """Accept a full id, a unique id prefix (as `list` shows) or a unique name."""
    if not ref.strip():
        raise ValueError(
            "give a schedule's name, id or a unique prefix of its id; see `hearth schedule list`"
        )
    # The gateway narrows by name, id or id prefix; `matching` lets a full id win over names.
    page = await client.request(
        ScheduleList(id=client.next_id(), match=ref, limit=11), ScheduleListResult
    )
    found = matching(page.schedules, ref)
    if not found:
        raise ValueError(
            f"no schedule matches {ref!r} (by name, id or id prefix); see `hearth schedule list`"
        )
    if len(found) > 1:
        candidates = ", ".join(f"{s.id[:8]} ({s.name!r})" for s in found[:10])
        rest = max(page.total, len(found)) - 10
        more = f" and {rest} more" if rest > 0 else ""
        raise ValueError(
            f"more than one schedule matches {ref!r}: {candidates}{more}; give a longer id "
            "prefix (see `hearth schedule list`)"
        )
    return found[0]


#: The argument of the commands that act on one schedule.
ScheduleRef = Annotated[
    str,
    typer.Argument(
        metavar="SCHEDULE",
        help="The schedule's name, its id, or a prefix of the id that matches only it.",
        show_default=False,
    ),
]


@app.command("show")
def show(
    schedule_id: ScheduleRef,
    limit: Annotated[int, typer.Option(help="How many of the newest runs to show.")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """One schedule and its run history (skipped and missed runs included, with why)."""

    async def ask(client: GatewayClient) -> tuple[ScheduleInfo, ScheduleRunsResult]:
        item = await _resolve(client, schedule_id)
        runs = await client.request(
            ScheduleRuns(id=client.next_id(), schedule_id=item.id, limit=limit),
            ScheduleRunsResult,
        )
        return item, runs

    item, runs = run(with_client(data_dir, ask))
    console.print(f"[bold]{item.name}[/] ({item.id})", highlight=False)
    console.print(f"  trigger   {_trigger(item)} in {item.timezone}", highlight=False)
    if item.target == "heartbeat":
        console.print("  target    the heartbeat (hearth heartbeat status)", highlight=False)
    else:
        console.print(f"  workflow  {item.workflow_id}", highlight=False)
    console.print(
        f"  state     {item.state}" + (f" — {item.state_reason}" if item.state_reason else ""),
        highlight=False,
    )
    console.print(f"  next run  {_when(_will_fire(item), item.timezone)}", highlight=False)
    if item.next_run and item.next_active_run and item.next_active_run != item.next_run:
        console.print(
            f"            (ticks before it, from {_when(item.next_run, item.timezone)}, fall "
            "outside the active hours and are recorded as skipped)",
            highlight=False,
        )
    if item.active_hours:
        days = item.active_hours.days_of_week
        console.print(
            f"  active    {item.active_hours.start}-{item.active_hours.end}"
            + (f" on days {','.join(map(str, days))}" if days else ""),
            highlight=False,
        )
    console.print(f"  policies  overlap={item.overlap} misfire={item.misfire}", highlight=False)
    table = Table("scheduled for", "fired at", "status", "reason", "execution")
    for entry in runs.runs:
        style = RUN_STYLE.get(entry.status, "")
        status = f"[{style}]{entry.status}[/]" if style else entry.status
        reason = escape(entry.reason or "")
        table.add_row(
            entry.scheduled_for.strftime("%Y-%m-%d %H:%M:%S %Z"),
            entry.fired_at.strftime("%H:%M:%S"),
            status,
            reason,
            entry.execution_id or "",
        )
    console.print(table)


def _change(schedule_id: str, data_dir: DataDirOption, enabled: bool) -> None:
    async def send(client: GatewayClient) -> Reply:
        item = await _resolve(client, schedule_id)
        return await client.request(
            ScheduleUpdate(id=client.next_id(), schedule_id=item.id, enabled=enabled),
            ScheduleUpdated,
        )

    reply = run(with_client(data_dir, send))
    assert isinstance(reply, ScheduleUpdated)

    async def state_of(client: GatewayClient) -> ScheduleInfo:
        return await _resolve(client, reply.schedule_id)

    item = run(with_client(data_dir, state_of))
    console.print(f"schedule {reply.schedule_id}: {item.state}", highlight=False)


@app.command("pause")
def pause(schedule_id: ScheduleRef, data_dir: DataDirOption = None) -> None:
    """Stop firing until resumed (missed ticks are not caught up on resume)."""
    _change(schedule_id, data_dir, False)


@app.command("resume")
def resume(schedule_id: ScheduleRef, data_dir: DataDirOption = None) -> None:
    """Fire again from the next tick."""
    _change(schedule_id, data_dir, True)


@app.command("rm")
def remove(schedule_id: ScheduleRef, data_dir: DataDirOption = None) -> None:
    """Delete a schedule and its history."""

    async def send(client: GatewayClient) -> ScheduleDeleted:
        item = await _resolve(client, schedule_id)
        return await client.request(
            ScheduleDelete(id=client.next_id(), schedule_id=item.id), ScheduleDeleted
        )

    reply = run(with_client(data_dir, send))
    console.print(f"schedule {reply.schedule_id} deleted", highlight=False)


@app.command("run")
def run_now(schedule_id: ScheduleRef, data_dir: DataDirOption = None) -> None:
    """Fire a schedule's workflow now (recorded in its history as a manual run)."""

    async def send(client: GatewayClient) -> ScheduleTriggered:
        item = await _resolve(client, schedule_id)
        return await client.request(
            ScheduleTrigger(id=client.next_id(), schedule_id=item.id), ScheduleTriggered
        )

    reply = run(with_client(data_dir, send))
    console.print(
        f"run {reply.run_id} started"
        + (f": execution {reply.execution_id}" if reply.execution_id else ""),
        highlight=False,
    )
