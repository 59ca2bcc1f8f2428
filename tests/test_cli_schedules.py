"""`hearth schedule …` as a person uses it: real processes end to end.

One gateway process (`hearth serve`) serves the whole module; every command runs as its own
`python -m hearth` process with stdin not a terminal. Commands that do not depend on each other
are started together, because each CLI process spends seconds importing.

The CLI processes get a fixed, wide console (`COLUMNS`), so Rich neither wraps nor shortens the
table cells the assertions read; what a default 80-column pipe shows is tested on its own.
The gateway's `config.toml` sets `timezone`, so "the default zone comes from the config" is
checked too.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.schedules import (
    ScheduleInfo,
    ScheduleList,
    ScheduleListResult,
    ScheduleRunInfo,
)
from tests.support import cli as support_cli
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.schedules import NOOP, create, runs
from tests.support.workflows import write_workflow

pytestmark = pytest.mark.slow

T = TypeVar("T")

TIMEOUT_S = 60
#: How long a polling loop may wait for the gateway before the test gives up.
POLL_S = 120
CONFIG_ZONE = "Asia/Tokyo"
WIDE = "200"

GREET = """
    name: Greet
    inputs:
      who: {type: string, required: true}
      times: {type: integer, default: 1}
    steps:
      - {id: a, action: noop}
"""

CREATED = re.compile(r"schedule ([0-9a-f-]{36}) created; next run (.+)")
STARTED = re.compile(r"run ([0-9a-f-]{36}) started: execution ([0-9a-f-]{36})")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TABLE_LINES = re.compile(r"[\u2500-\u257f]")


# -- running the CLI ------------------------------------------------------------------------


def cli_env(data_dir: Path, columns: str | None = WIDE) -> dict[str, str]:
    return support_cli.cli_env(data_dir, columns)


def hearth_cli(
    data_dir: Path, *args: str, columns: str | None = WIDE
) -> subprocess.CompletedProcess[str]:
    return support_cli.run_cli(args, data_dir, columns)


def hearth_cli_together(
    data_dir: Path, *commands: Sequence[str]
) -> list[subprocess.CompletedProcess[str]]:
    return support_cli.run_cli_together(commands, data_dir, WIDE)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded, without colour codes."""
    assert result.returncode == 0, f"{result.args}: {result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return ANSI.sub("", result.stdout)


def flat(text: str) -> str:
    """Text without table lines and with whitespace collapsed."""
    return " ".join(TABLE_LINES.sub(" ", ANSI.sub("", text)).split())


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    lines = ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr
    return lines[0]


def rows(text: str) -> list[list[str]]:
    """The body rows of the Rich tables in `text`, as lists of stripped cells."""
    found = []
    for line in ANSI.sub("", text).splitlines():
        line = line.strip()
        if line.startswith("│") and line.endswith("│"):
            found.append([cell.strip() for cell in line[1:-1].split("│")])
    return found


def list_row(table_text: str, schedule_id: str) -> dict[str, str] | None:
    """The `schedule list` row of one schedule, by column name."""
    columns = ("id", "name", "trigger", "zone", "state", "next run", "last run", "runs")
    for cells in rows(table_text):
        if cells[0] == schedule_id[:8]:
            assert len(cells) == len(columns), cells
            return dict(zip(columns, cells, strict=True))
    return None


def created_id(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(schedule id, next run as printed) from `schedule add`."""
    match = CREATED.search(flat(ok(result)))
    assert match, result.stdout
    return match.group(1), match.group(2)


def poll(action: Callable[[], str], done: Callable[[str], bool], what: str) -> str:
    """Repeat `action` until `done(output)`, for at most POLL_S seconds."""
    deadline = time.monotonic() + POLL_S
    while True:
        output = action()
        if done(output):
            return output
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; last output:\n{output}")
        time.sleep(0.5)


# -- looking at the gateway directly (what the CLI sent, and quick set-up) -----------------


def on_gateway(gateway: GatewayProcess, action: Callable[[GatewayClient], Awaitable[T]]) -> T:
    async def call() -> T:
        client = GatewayClient(gateway.url, gateway.token)
        await client.connect()
        try:
            return await action(client)
        finally:
            await client.close()

    return asyncio.run(call())


def listing(gateway: GatewayProcess) -> dict[str, ScheduleInfo]:
    async def ask(client: GatewayClient) -> dict[str, ScheduleInfo]:
        result = await client.request(ScheduleList(id=client.next_id()), ScheduleListResult)
        return {item.id: item for item in result.schedules}

    return on_gateway(gateway, ask)


def history(gateway: GatewayProcess, schedule_id: str) -> list[ScheduleRunInfo]:
    """Oldest first."""
    return on_gateway(gateway, lambda client: runs(client, schedule_id))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway process for the module, with a `noop` and a `greet` workflow."""
    data_dir = tmp_path_factory.mktemp("cli-schedules") / "data"
    data_dir.mkdir()
    write_workflow(data_dir, "noop", NOOP)
    write_workflow(data_dir, "greet", GREET)
    (data_dir / "config.toml").write_text(f'timezone = "{CONFIG_ZONE}"\n')
    gateway = start_gateway_process(data_dir)
    try:
        yield gateway
    finally:
        assert gateway.stop() == 0, gateway.log()


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_add_each_trigger_then_list_and_show(served: GatewayProcess) -> None:
    data_dir = served.data_dir
    digest, hourly, once, greet = hearth_cli_together(
        data_dir,
        (
            "schedule",
            "add",
            "weekday digest",
            "--cron",
            "30 8 29 2 *",
            "--workflow",
            "noop",
            "--tz",
            "Europe/Berlin",
            "--active-hours",
            "08:00-18:00",
            "--days",
            "1-5",
            "--max-runs",
            "10",
            "--overlap",
            "allow",
            "--misfire",
            "skip",
        ),
        ("schedule", "add", "quarter hour", "--every", "15m", "-w", "noop"),
        (
            "schedule",
            "add",
            "new year",
            "--at",
            "2099-01-01T09:00",
            "--workflow",
            "noop",
            "--tz",
            "America/New_York",
        ),
        (
            "schedule",
            "add",
            "greet bob",
            "--every",
            "1d",
            "--workflow",
            "greet",
            "--input",
            "who=bob",
            "-i",
            "times=3",
            "--tz",
            "UTC",
        ),
    )
    digest_id, digest_next = created_id(digest)
    hourly_id, _ = created_id(hourly)
    once_id, once_next = created_id(once)
    greet_id, _ = created_id(greet)
    # Next runs are printed in the schedule's zone; a naive --at is read in --tz.
    assert re.match(r"\d{4}-02-29 08:30:00 \+01:00", digest_next), digest_next
    assert once_next.startswith("2099-01-01 09:00:00 -05:00"), once_next

    # What the gateway stored: every option made it into the schedule.create message.
    stored = listing(served)
    item = stored[digest_id]
    assert (item.cron_expression, item.timezone, item.workflow_id) == (
        "30 8 29 2 *",
        "Europe/Berlin",
        "noop",
    )
    assert item.active_hours is not None
    assert (item.active_hours.start, item.active_hours.end) == ("08:00", "18:00")
    assert item.active_hours.days_of_week == [1, 2, 3, 4, 5]
    assert (item.max_runs, item.overlap, item.misfire) == (10, "allow", "skip")
    assert (stored[hourly_id].every, stored[hourly_id].timezone) == ("15m", CONFIG_ZONE)
    assert (stored[hourly_id].overlap, stored[hourly_id].misfire) == ("skip", "run_once")
    assert (stored[once_id].max_runs, stored[once_id].timezone) == (1, "America/New_York")
    assert stored[greet_id].input == {"who": "bob", "times": 3}  # JSON values keep their type

    table, shown = hearth_cli_together(
        data_dir, ("schedule", "list"), ("schedule", "show", digest_id[:8])
    )
    table_text = ok(table)
    row = list_row(table_text, digest_id)
    assert row is not None, table_text
    assert row["name"] == "weekday digest"
    assert row["trigger"] == "cron 30 8 29 2 *"
    assert row["zone"] == "Europe/Berlin"
    assert row["state"] == "active"
    assert row["next run"].startswith(digest_next.split(" (")[0])
    assert row["runs"] == "0/10"
    row = list_row(table_text, hourly_id)
    assert row is not None
    assert (row["trigger"], row["zone"], row["state"]) == ("every 15m", CONFIG_ZONE, "active")
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+09:00", row["next run"]), row
    row = list_row(table_text, once_id)
    assert row is not None
    assert row["trigger"] == "at 2099-01-01T09:00:00-05:00"
    assert (row["zone"], row["runs"]) == ("America/New_York", "0/1")
    assert row["next run"].startswith("2099-01-01 09:00:00 -05:00")

    detail = flat(ok(shown))
    assert f"weekday digest ({digest_id})" in detail
    assert "trigger cron 30 8 29 2 * in Europe/Berlin" in detail
    assert "workflow noop" in detail
    assert "state active" in detail
    assert "active 08:00-18:00 on days 1,2,3,4,5" in detail
    assert "policies overlap=allow misfire=skip" in detail


@pytest.mark.timeout(300)
def test_usage_errors_exit_2_and_create_nothing(served: GatewayProcess) -> None:
    add = ("schedule", "add")
    results = hearth_cli_together(
        served.data_dir,
        (*add, "usage-none", "--workflow", "noop"),
        (*add, "usage-two", "--workflow", "noop", "--cron", "* * * * *", "--every", "1m"),
        (*add, "usage-days-range", "-w", "noop", "--every", "1m", "--days", "0-5"),
        (*add, "usage-days-word", "-w", "noop", "--every", "1m", "--days", "mon-fri"),
        (*add, "usage-hours", "-w", "noop", "--every", "1m", "--active-hours", "0900"),
    )
    none, two, days_range, days_word, hours = results
    for result in results:
        assert result.returncode == 2, result.stderr
    assert_one_line_error(none, "give exactly one of --cron, --every or --at")
    assert_one_line_error(two, "give exactly one of --cron, --every or --at")
    assert_one_line_error(days_range, "--days '0-5'", "1 (Monday) to 7 (Sunday)")
    assert_one_line_error(days_word, "--days 'mon-fri'", "numbers 1-7 (Monday = 1)")
    assert_one_line_error(hours, "--active-hours '0900'", "START-END such as 09:00-18:00")
    names = {item.name for item in listing(served).values()}
    assert not {n for n in names if n.startswith("usage-")}


@pytest.mark.timeout(300)
def test_gateway_refusals_are_one_line_errors(served: GatewayProcess) -> None:
    add = ("schedule", "add")
    bad_minute, too_few, unknown, bad_hours, past = hearth_cli_together(
        served.data_dir,
        (*add, "refused-cron", "-w", "noop", "--cron", "61 * * * *"),
        (*add, "refused-fields", "-w", "noop", "--cron", "* * *"),
        (*add, "refused-workflow", "-w", "nope", "--every", "5m"),
        (*add, "refused-hours", "-w", "noop", "--every", "5m", "--active-hours", "9am-18:00"),
        (*add, "refused-at", "-w", "noop", "--at", "2020-01-01T09:00", "--tz", "UTC"),
    )
    # Refused by the gateway: the code and its message naming the field, exit 1.
    for result in (bad_minute, too_few, unknown, bad_hours, past):
        assert result.returncode == 1, result.stderr
    assert_one_line_error(bad_minute, "INVALID_SCHEDULE", "cronExpression", "'61 * * * *'")
    assert_one_line_error(too_few, "INVALID_SCHEDULE", "cronExpression", "has 3 fields")
    assert_one_line_error(unknown, "WORKFLOW_NOT_FOUND", "no workflow 'nope'", "noop")
    assert_one_line_error(bad_hours, "INVALID_SCHEDULE", "activeHours.start", "'9am'")
    assert_one_line_error(past, "INVALID_SCHEDULE", "invalid at", "is in the past")
    names = {item.name for item in listing(served).values()}
    assert not {n for n in names if n.startswith("refused-")}


@pytest.mark.timeout(300)
def test_show_lists_the_run_history(served: GatewayProcess) -> None:
    # --overlap allow: a slow machine must not turn the second tick into "skipped".
    twice = ("twice", "--every", "1s", "-w", "noop", "--max-runs", "2", "--overlap", "allow")
    added = hearth_cli(served.data_dir, "schedule", "add", *twice)
    schedule_id, _ = created_id(added)

    def show() -> str:
        return ok(hearth_cli(served.data_dir, "schedule", "show", schedule_id))

    def two_ok(output: str) -> bool:
        return [cells[2] for cells in rows(output)].count("ok") >= 2

    output = poll(show, two_ok, "two ok runs in `schedule show`")
    history_rows = rows(output)
    assert [cells[2] for cells in history_rows] == ["ok", "ok"]  # and nothing else
    executions = [cells[4] for cells in history_rows]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", e) for e in executions), history_rows
    assert len(set(executions)) == 2
    scheduled = [cells[0] for cells in history_rows]
    assert scheduled == sorted(scheduled, reverse=True)  # newest first
    assert all(s.endswith("+09:00") for s in scheduled), scheduled  # the config's zone
    assert "state completed" in flat(output)
    assert "next run —" in flat(output)


@pytest.mark.timeout(300)
def test_pause_resume_run_and_rm_by_prefix(served: GatewayProcess) -> None:
    data_dir = served.data_dir
    schedule_id = on_gateway(
        served, lambda client: create(client, name="hourly", every="1h", workflow_id="noop")
    )
    prefix = schedule_id[:8]

    paused = hearth_cli(data_dir, "schedule", "pause", prefix)
    assert flat(ok(paused)) == f"schedule {schedule_id}: paused"
    row = list_row(ok(hearth_cli(data_dir, "schedule", "list")), schedule_id)
    assert row is not None
    assert (row["state"], row["next run"]) == ("paused", "—")

    resumed = hearth_cli(data_dir, "schedule", "resume", prefix)
    assert flat(ok(resumed)) == f"schedule {schedule_id}: active"
    table, started = hearth_cli_together(
        data_dir, ("schedule", "list"), ("schedule", "run", prefix)
    )
    row = list_row(ok(table), schedule_id)
    assert row is not None
    assert row["state"] == "active"
    assert row["next run"] != "—"
    match = STARTED.fullmatch(flat(ok(started)))
    assert match, started.stdout
    run_id, execution_id = match.groups()

    def manual_ok() -> str:
        for run in history(served, schedule_id):
            if run.run_id == run_id and run.status == "ok":
                return "ok"
        return ""

    poll(manual_ok, bool, "the manual run to finish")
    output = ok(hearth_cli(data_dir, "schedule", "show", prefix))
    assert [cells[2:] for cells in rows(output)] == [["ok", "manual", execution_id]]
    item = listing(served)[schedule_id]
    assert (item.run_count, item.state) == (0, "active")  # manual runs don't count

    removed = hearth_cli(data_dir, "schedule", "rm", prefix)
    assert flat(ok(removed)) == f"schedule {schedule_id} deleted"
    table, gone = hearth_cli_together(data_dir, ("schedule", "list"), ("schedule", "show", prefix))
    assert list_row(ok(table), schedule_id) is None
    assert gone.returncode == 1
    assert_one_line_error(gone, f"no schedule matches '{prefix}'")
    assert schedule_id not in listing(served)


@pytest.mark.timeout(300)
def test_ambiguous_and_unknown_prefixes_are_refused(served: GatewayProcess) -> None:
    # Ids are random: add schedules until two of them start with the same character.
    for number in range(18):  # 17 ids cannot all start differently
        ids = list(listing(served))
        firsts = [i[0] for i in ids]
        shared = sorted({c for c in firsts if firsts.count(c) > 1})
        if shared:
            break
        on_gateway(
            served,
            lambda client, n=number: create(
                client, name=f"ambiguous-{n}", every="1h", workflow_id="noop"
            ),
        )
    assert shared, ids
    before = {i: item.state for i, item in listing(served).items()}

    ambiguous, unknown = hearth_cli_together(
        served.data_dir, ("schedule", "rm", shared[0]), ("schedule", "pause", "zzz")
    )
    assert ambiguous.returncode == 1
    assert_one_line_error(
        ambiguous, f"more than one schedule matches '{shared[0]}'", "hearth schedule list"
    )
    assert unknown.returncode == 1
    assert_one_line_error(unknown, "no schedule matches 'zzz'", "hearth schedule list")
    after = {i: item.state for i, item in listing(served).items()}
    assert after == before  # nothing deleted, nothing paused


@pytest.mark.timeout(300)
def test_list_keeps_ids_and_zones_whole_in_80_columns(served: GatewayProcess) -> None:
    schedule_id = on_gateway(
        served,
        lambda client: create(
            client, name="narrow", every="1h", workflow_id="noop", timezone="America/New_York"
        ),
    )
    table = ok(hearth_cli(served.data_dir, "schedule", "list", columns=None))
    assert schedule_id[:8] in table
    assert "America/New_York" in table


@pytest.mark.timeout(300)
def test_commands_take_a_unique_name_and_list_the_candidates_of_an_ambiguous_one(
    served: GatewayProcess,
) -> None:
    only = on_gateway(
        served, lambda client: create(client, name="lonely digest", every="1h", workflow_id="noop")
    )
    twins = [
        on_gateway(
            served, lambda client: create(client, name="twin", every="2h", workflow_id="noop")
        )
        for _ in range(2)
    ]
    shown, paused, ambiguous = hearth_cli_together(
        served.data_dir,
        ("schedule", "show", "lonely digest"),
        ("schedule", "pause", "lonely digest"),
        ("schedule", "rm", "twin"),
    )
    assert f"lonely digest ({only})" in flat(ok(shown))
    assert flat(ok(paused)) == f"schedule {only}: paused"
    assert ambiguous.returncode == 1
    line = assert_one_line_error(ambiguous, "more than one schedule matches 'twin'")
    for twin in twins:
        assert f"{twin[:8]} ('twin')" in line
    current = listing(served)
    assert all(twin in current for twin in twins)  # nothing deleted
    # A twin is still reachable by its id prefix; the other by its full id.
    removed, resumed = hearth_cli_together(
        served.data_dir,
        ("schedule", "rm", twins[0][:8]),
        ("schedule", "resume", "lonely digest"),
    )
    assert flat(ok(removed)) == f"schedule {twins[0]} deleted"
    assert flat(ok(resumed)) == f"schedule {only}: active"
    assert flat(ok(hearth_cli(served.data_dir, "schedule", "rm", "twin"))) == (
        f"schedule {twins[1]} deleted"
    )


@pytest.mark.timeout(300)
def test_preview_shows_the_scheduler_ticks_and_names_bad_fields(served: GatewayProcess) -> None:
    autumn, window, too_many, bad_zone, two = hearth_cli_together(
        served.data_dir,
        (
            "schedule",
            "preview",
            "--cron",
            "0 */30 * * * *",
            "--tz",
            "Europe/Berlin",
            "--from",
            "2025-10-26T01:45",
            "--count",
            "4",
        ),
        (
            "schedule",
            "preview",
            "--every",
            "4h",
            "--from",
            "2026-11-27T10:00",
            "--active-hours",
            "08:00-18:00",
            "--days",
            "1-5",
            "--count",
            "3",
        ),
        ("schedule", "preview", "--cron", "0 9 * * *", "--count", "101"),
        ("schedule", "preview", "--every", "1h", "--tz", "Europe/Berln"),
        ("schedule", "preview", "--every", "1h", "--cron", "* * * * *"),
    )
    assert [cells for cells in rows(ok(autumn))] == [
        ["2025-10-26T02:00:00+02:00", "2025-10-26 00:00:00", ""],
        ["2025-10-26T02:30:00+02:00", "2025-10-26 00:30:00", ""],
        ["2025-10-26T02:00:00+01:00", "2025-10-26 01:00:00", ""],
        ["2025-10-26T02:30:00+01:00", "2025-10-26 01:30:00", ""],
    ]
    assert "local (Europe/Berlin)" in ok(autumn)
    # No --tz: the gateway's default zone (config.toml), named in the header.
    assert f"local ({CONFIG_ZONE})" in ok(window)
    assert [cells[2] for cells in rows(ok(window))] == [
        "",
        "skipped: outside the active hours",
        "skipped: outside the active hours",
    ]
    assert too_many.returncode == 1
    assert_one_line_error(too_many, "INVALID_SCHEDULE", "invalid count", "1 to 100")
    assert bad_zone.returncode == 1
    assert_one_line_error(bad_zone, "INVALID_SCHEDULE", "invalid timezone", "Europe/Berln")
    assert two.returncode == 2
    assert_one_line_error(two, "exactly one of --cron, --every or --at")
