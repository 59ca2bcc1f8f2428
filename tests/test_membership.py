"""`one_of`: the same rows as `IN (...)`, with one statement text whatever the list's length.

The statement text matters because each distinct text is a prepared statement held in every
connection's cache; lists that grow (a listing of every schedule) used to make a new one each
time, and that native memory was the gateway's growth under the protocol fuzz (issue 18).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hearth.store import Database
from hearth.store.membership import one_of
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedules import ScheduleRepository
from hearth.store.tables import schedule_runs

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


def _schedule(now: datetime) -> ScheduleRecord:
    return ScheduleRecord(
        id=str(uuid.uuid4()),
        name="",
        target="workflow",
        workflow_id="w",
        input=None,
        cron_expression=None,
        every="1m",
        every_s=60.0,
        at=None,
        anchor_at=now,
        timezone="UTC",
        active_hours=None,
        max_runs=None,
        run_count=0,
        overlap="skip",
        misfire="run_once",
        misfire_grace_s=3600.0,
        enabled=True,
        state="active",
        state_reason=None,
        consecutive_failures=0,
        next_run=None,
        last_execution_id=None,
        created_at=now,
        updated_at=now,
    )


async def test_schedule_listing_reuses_one_statement_as_schedules_grow(db: Database) -> None:
    """`schedule.list` reads the last run of every schedule: the list that used to grow."""
    repo = ScheduleRepository(db)
    now = datetime.now(UTC).replace(microsecond=0)
    ids: list[str] = []
    latest: dict[str, datetime] = {}
    for k in range(12):
        record = replace(_schedule(now), name=f"s{k}")
        await repo.insert(record)
        ids.append(record.id)
        runs = [
            ScheduleRunRecord(
                str(uuid.uuid4()),
                record.id,
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
        latest[record.id] = runs[-1].scheduled_for
    seen = _statements(db)
    for size in range(1, len(ids) + 1):
        found = await repo.last_runs(ids[:size])
        assert {key: run.scheduled_for for key, run in found.items()} == {
            key: latest[key] for key in ids[:size]
        }
    assert len(seen) == len(ids)
    assert len(set(seen)) == 1
