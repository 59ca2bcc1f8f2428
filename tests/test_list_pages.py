"""`schedule.list` and `session.list` answer a page at a time, on both backends; the CLI follows.

A listing of every schedule grew with the table: its replies were the gateway's memory growth
under the protocol fuzz (issue 18). Pages keep each reply bounded; `match` and `failing` let
the CLI and the dashboard ask for what they show instead of everything.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from hearth.client import GatewayClient, GatewayError
from hearth.protocol import ErrorCode
from hearth.protocol.messages.chat import SessionList, SessionListResult
from hearth.protocol.messages.schedules import (
    ScheduleDelete,
    ScheduleDeleted,
    ScheduleList,
    ScheduleListResult,
)
from hearth.store.records import SessionRecord
from tests.support.cli import TIMEOUT_S, cli_env, run_cli
from tests.support.gateway import RunningGateway
from tests.support.schedules import FAILING, NOOP, create, paused, wait_runs
from tests.support.workflows import reload, write_workflow


@pytest.fixture
async def noop_gateway(gateway: RunningGateway) -> RunningGateway:
    write_workflow(gateway.data_dir, "noop", NOOP)
    write_workflow(gateway.data_dir, "failing", FAILING)
    await reload(await gateway.client())
    return gateway


#: One page of a listing: (ids on it, nextCursor, total).
Fetch = Callable[[str | None], Awaitable[tuple[list[str], str | None, int]]]


def _schedules(client: GatewayClient, limit: int) -> Fetch:
    async def fetch(cursor: str | None) -> tuple[list[str], str | None, int]:
        page = await client.request(
            ScheduleList(id=client.next_id(), limit=limit, cursor=cursor), ScheduleListResult
        )
        assert len(page.schedules) <= limit
        return [s.id for s in page.schedules], page.next_cursor, page.total

    return fetch


def _sessions(client: GatewayClient, limit: int) -> Fetch:
    async def fetch(cursor: str | None) -> tuple[list[str], str | None, int]:
        page = await client.request(
            SessionList(id=client.next_id(), limit=limit, cursor=cursor), SessionListResult
        )
        assert len(page.sessions) <= limit
        return [s.session_id for s in page.sessions], page.next_cursor, page.total

    return fetch


async def _every_page(fetch: Fetch) -> tuple[list[str], int, set[int]]:
    """Follow `nextCursor` to the end: the ids in order, the pages it took, the totals seen."""
    ids: list[str] = []
    totals: set[int] = set()
    cursor: str | None = None
    pages = 0
    while True:
        got, cursor, total = await fetch(cursor)
        ids.extend(got)
        totals.add(total)
        pages += 1
        if cursor is None:
            return ids, pages, totals


async def test_pages_cover_every_schedule_once_in_creation_order(
    noop_gateway: RunningGateway,
) -> None:
    client = await noop_gateway.client()
    made = await paused(client, *(f"s{k}" for k in range(7)))
    seen, pages, totals = await _every_page(_schedules(client, 3))
    assert pages == 3
    assert totals == {7}
    assert seen == made  # oldest first, none twice, none left out
    # A page that ends exactly at the last schedule says so: no cursor to an empty page.
    assert await _every_page(_schedules(client, 7)) == (made, 1, {7})
    assert await _every_page(_schedules(client, 1)) == (made, 7, {7})
    whole = await client.request(ScheduleList(id=client.next_id()), ScheduleListResult)
    assert [s.id for s in whole.schedules] == made
    assert whole.total == 7
    assert whole.next_cursor is None


async def test_a_page_survives_the_schedule_its_cursor_names_being_deleted(
    noop_gateway: RunningGateway,
) -> None:
    """The cursor is a position (creation time and id), not a row that must still exist."""
    client = await noop_gateway.client()
    made = await paused(client, *(f"d{k}" for k in range(4)))
    first = await client.request(ScheduleList(id="p1", limit=2), ScheduleListResult)
    assert first.next_cursor is not None
    await client.request(ScheduleDelete(id="del", schedule_id=made[1]), ScheduleDeleted)
    rest = await client.request(
        ScheduleList(id="p2", limit=2, cursor=first.next_cursor), ScheduleListResult
    )
    assert [s.id for s in rest.schedules] == made[2:]
    assert rest.total == 3
    assert rest.next_cursor is None


@pytest.mark.parametrize("cursor", ["not-a-cursor", "bm9zZXBhcmF0b3I", "MjAyNi0xMy0wMXx4"])
async def test_a_cursor_the_gateway_did_not_give_out_is_refused_by_name(
    noop_gateway: RunningGateway, cursor: str
) -> None:
    client = await noop_gateway.client()
    with pytest.raises(GatewayError) as refused:
        await client.request(ScheduleList(id="bad", cursor=cursor), ScheduleListResult)
    assert refused.value.code == ErrorCode.INVALID_REQUEST
    assert refused.value.details == {"field": "cursor"}
    assert "nextCursor" in refused.value.message
    # The connection goes on serving.
    listing = await client.request(ScheduleList(id="after"), ScheduleListResult)
    assert listing.total == 0


async def test_match_finds_by_id_name_or_id_prefix(noop_gateway: RunningGateway) -> None:
    client = await noop_gateway.client()
    first, _, _ = await paused(client, "backup", "digest", "digest")

    async def match(ref: str) -> list[str]:
        page = await client.request(
            ScheduleList(id=client.next_id(), match=ref), ScheduleListResult
        )
        assert page.total == len(page.schedules)
        return [s.name for s in page.schedules]

    assert await match(first) == ["backup"]
    assert await match(first[:6]) == ["backup"]
    assert await match("digest") == ["digest", "digest"]
    assert await match("nothing%") == []  # LIKE wildcards in a reference are literal
    assert await match("_") == []


async def test_failing_lists_only_schedules_whose_runs_fail(noop_gateway: RunningGateway) -> None:
    client = await noop_gateway.client()
    await paused(client, "fine")
    broken = await create(client, name="broken", every="1s", workflow_id="failing", max_runs=1)
    await wait_runs(client, broken, 1, status={"failed"})
    page = await client.request(ScheduleList(id="f", failing=True), ScheduleListResult)
    assert [s.name for s in page.schedules] == ["broken"]
    assert page.total == 1


async def test_cli_lists_every_page_and_resolves_names(noop_gateway: RunningGateway) -> None:
    """`hearth schedule list` follows the pages (1 000 a page), and a name still resolves."""
    client = await noop_gateway.client()
    await paused(client, "cli0", "cli1", "cli2")

    async def hearth(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_cli, args, noop_gateway.data_dir, "200")

    listed = await hearth("schedule", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(f"cli{k}" in listed.stdout for k in range(3))
    shown = await hearth("schedule", "show", "cli1")
    assert shown.returncode == 0, shown.stderr
    assert "cli1" in shown.stdout
    missing = await hearth("schedule", "show", "no-such")
    assert missing.returncode != 0
    assert "no schedule matches 'no-such'" in missing.stderr + missing.stdout


async def test_session_pages_newest_first_and_cancel_finds_a_claim(
    gateway: RunningGateway,
) -> None:
    """`session.list` pages the same way, most recently updated first."""
    repo = gateway.hearth.state.chat.repo
    start = datetime(2026, 12, 1, tzinfo=UTC)
    made: list[str] = []
    for k in range(5):
        at = start + timedelta(minutes=k)
        record = SessionRecord(
            id=str(uuid.uuid4()),
            session_key=f"s-0000000{k}",
            title=f"t{k}",
            model="local:m",
            agent_id=None,
            approved_tools=[],
            message_count=0,
            active_request_id="req-busy" if k == 2 else None,
            active_since=at if k == 2 else None,
            created_at=at,
            updated_at=at,
        )
        await repo.create(record)
        made.append(record.id)
    client = await gateway.client()
    seen, pages, totals = await _every_page(_sessions(client, 2))
    assert (pages, totals) == (3, {5})
    assert seen == made[::-1]
    assert await _every_page(_sessions(client, 5)) == (made[::-1], 1, {5})
    with pytest.raises(GatewayError) as refused:
        await client.request(SessionList(id="bad", cursor="x"), SessionListResult)
    assert refused.value.details == {"field": "cursor"}
    # chat.cancel of a request no stream on this node runs asks the database, not a listing.
    assert await gateway.hearth.state.chat.cancel("req-busy") is True
    assert await gateway.hearth.state.chat.cancel("req-none") is False


async def test_chat_sessions_command_shows_the_latest_and_says_what_is_older(
    gateway: RunningGateway,
) -> None:
    """`/sessions` in `hearth chat` shows the 50 latest and says where the older ones are."""
    repo = gateway.hearth.state.chat.repo
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for k in range(52):
        at = start + timedelta(minutes=k)
        await repo.create(
            SessionRecord(
                id=str(uuid.uuid4()),
                session_key=f"s-{k:08x}",
                title=f"talk {k}",
                model="local:m",
                agent_id=None,
                approved_tools=[],
                message_count=0,
                active_request_id=None,
                active_since=None,
                created_at=at,
                updated_at=at,
            )
        )

    def chat() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hearth", "chat"],
            input="/sessions\n/quit\n",
            capture_output=True,
            text=True,
            env=cli_env(gateway.data_dir, "200"),
            timeout=TIMEOUT_S,
            check=False,
        )

    done = await asyncio.to_thread(chat)
    assert done.returncode == 0, done.stderr
    assert f"s-{51:08x}" in done.stdout  # the newest
    assert f"s-{2:08x}" in done.stdout  # the 50th newest
    assert f"s-{1:08x}" not in done.stdout
    assert "2 older sessions not shown" in done.stdout
    assert "hearth chat -s KEY" in done.stdout
