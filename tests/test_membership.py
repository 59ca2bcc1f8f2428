"""`one_of`: the same rows as `IN (...)`, with one statement text whatever the list's length.

The statement text matters because each distinct text is a prepared statement held in every
connection's cache; lists that grow (a listing of every schedule) used to make a new one each
time, and that native memory was the gateway's growth under the protocol fuzz (issue 18).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hearth.store import Database
from hearth.store.membership import one_of
from hearth.store.records import ScheduleRunRecord
from hearth.store.tables import schedule_runs
from tests.support.gateway import RunningGateway
from tests.support.schedules import NOOP, paused
from tests.support.workflows import reload, write_workflow

_scratch = sa.MetaData()
_items = sa.Table(
    "membership_items",
    _scratch,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


def _statements(db: Database) -> list[str]:
    """Every SELECT the engine sends from now on, in order (SQLite adds a BEGIN of its own)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_matches_in_for_strings_integers_and_empty_lists(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_scratch.create_all)
        await conn.execute(_items.insert(), [{"id": f"i{k}", "n": k} for k in range(30)])
    cases: list[list[Any]] = [
        ["i1"],
        ["i1", "i2", "missing", "i2"],  # unknown and repeated values change nothing
        [],
        [f"i{k}" for k in range(30)],
        ["it's", 'say "x"', "ünï", "i7"],  # quoting survives the list's encoding
    ]
    async with db.connect() as conn:
        for values in cases:
            got = await conn.execute(sa.select(_items.c.id).where(one_of(_items.c.id, values)))
            want = await conn.execute(sa.select(_items.c.id).where(_items.c.id.in_(values)))
            assert sorted(got.scalars()) == sorted(want.scalars()), values
        numbers = await conn.execute(sa.select(_items.c.n).where(one_of(_items.c.n, [3, 5, 99])))
        assert sorted(numbers.scalars()) == [3, 5]


async def test_one_statement_text_for_every_length(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_scratch.create_all)
    seen = _statements(db)
    async with db.connect() as conn:
        for size in (1, 2, 17, 300):
            values = [f"v{k}" for k in range(size)]
            await conn.execute(sa.select(_items.c.id).where(one_of(_items.c.id, values)))
    assert len(seen) == 4
    assert len(set(seen)) == 1, seen


async def test_schedule_listing_reuses_one_statement_as_schedules_grow(
    gateway: RunningGateway,
) -> None:
    """`schedule.list` reads the last run of every schedule: the list that used to grow."""
    write_workflow(gateway.data_dir, "noop", NOOP)
    client = await gateway.client()
    await reload(client)
    db = gateway.hearth.db
    repo = gateway.hearth.state.schedules.repo
    ids = await paused(client, *(f"s{k}" for k in range(12)))
    now = datetime.now(UTC).replace(microsecond=0)
    latest: dict[str, datetime] = {}
    for k, schedule_id in enumerate(ids):
        runs = [
            ScheduleRunRecord(
                str(uuid.uuid4()),
                schedule_id,
                now + timedelta(minutes=m),
                now,
                "ok",
                None,
                None,
                None,
            )
            for m in range(k % 3 + 1)
        ]
        async with db.begin() as conn:
            await conn.execute(schedule_runs.insert(), [r.__dict__ for r in runs])
        latest[schedule_id] = runs[-1].scheduled_for
    seen = _statements(db)
    for size in range(1, len(ids) + 1):
        found = await repo.last_runs(ids[:size])
        assert {key: run.scheduled_for for key, run in found.items()} == {
            key: latest[key] for key in ids[:size]
        }
    assert len(seen) == len(ids)
    assert len(set(seen)) == 1
