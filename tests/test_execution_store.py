"""The execution repository on each backend: fenced hot writes, group commit, failure isolation.

The engine only sees `ExecutionRepository`; these tests hold every implementation behind it
(SQLite writer, asyncpg group commit) to the same contract, on real databases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from hearth.store import Database
from hearth.store.execution_backends import execution_repository
from hearth.store.executions import RUNNING, ExecutionRepository, PinnedSource
from hearth.store.executions_postgres import PostgresExecutions
from hearth.store.executions_sqlite import SqliteExecutions
from hearth.store.pg_writer import asyncpg_dsn
from hearth.store.records import ExecutionRecord, StepRunRecord
from hearth.store.tables import step_runs, step_starts, workflow_executions

NODE = "node-a"
PIN = PinnedSource("wf", "hash1", "name: wf\nsteps:\n  - {id: a, action: noop}\n", "/wf.yaml")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Database, ExecutionRepository]]:
    db = Database.from_url(database_url)
    await db.upgrade()
    try:
        yield db, execution_repository(db)
    finally:
        await db.dispose()


@pytest.fixture(params=["backend", "sqlalchemy"])
async def any_store(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[tuple[Database, ExecutionRepository]]:
    """The backend's own repository, and the plain SQLAlchemy one (used for in-memory SQLite):
    both must keep the same contract."""
    db = Database.from_url(database_url)
    await db.upgrade()
    try:
        plain = request.param == "sqlalchemy"
        yield db, ExecutionRepository(db) if plain else execution_repository(db)
    finally:
        await db.dispose()


def _record(execution_id: str, now: datetime, node: str = NODE) -> ExecutionRecord:
    return ExecutionRecord(
        id=execution_id,
        workflow_id="wf",
        content_hash="hash1",
        status=RUNNING,
        triggered_by="manual",
        input={"n": 1},
        current_step_id="a",
        visit_seq=1,
        attempt=1,
        step_count=0,
        waiting_for=None,
        wake_at=None,
        error=None,
        cancel_requested=False,
        scheduled_for=None,
        owner_node=node,
        lease_expires_at=now + timedelta(seconds=30),
        started_at=now,
        updated_at=now,
        completed_at=None,
    )


def _step(execution_id: str, seq: int, now: datetime) -> StepRunRecord:
    return StepRunRecord(
        execution_id,
        seq,
        "a",
        1,
        "success",
        {"out": [1, 2]},
        None,
        now,
        now,
        next_step_id="a",
        next_visit_seq=seq + 1,
        next_attempt=1,
    )


async def _journal(db: Database, execution_id: str) -> list[int]:
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(step_runs.c.seq)
            .where(step_runs.c.execution_id == execution_id)
            .order_by(step_runs.c.seq)
        )
        return [row[0] for row in rows]


async def _take_over(db: Database, execution_id: str, node: str) -> None:
    """What another node's recovery pass does once our lease ran out."""
    async with db.begin() as conn:
        await conn.execute(
            workflow_executions.update()
            .where(workflow_executions.c.id == execution_id)
            .values(owner_node=node)
        )


def test_each_backend_gets_its_implementation(database_url: str) -> None:
    db = Database.from_url(database_url)
    expected = PostgresExecutions if db.backend == "postgresql" else SqliteExecutions
    assert type(execution_repository(db)) is expected


async def test_steps_of_concurrent_executions_commit_together_and_stay_fenced(
    store: tuple[Database, ExecutionRepository],
) -> None:
    """Runners ready in the same loop iteration share one commit; a node that lost an
    execution to another node writes nothing for it, while the others in the batch commit."""
    db, executions = store
    now = datetime.now(UTC)
    ids = [f"exec-{n}" for n in range(8)]
    await asyncio.gather(*(executions.create(_record(i, now), PIN) for i in ids))
    await _take_over(db, ids[3], "node-b")
    writer = db.writer or db.pg_writer
    assert writer is not None
    batches = writer.batches

    applied = await asyncio.gather(*(executions.advance(i, NODE, _step(i, 1, now)) for i in ids))

    assert applied == [i != ids[3] for i in ids]
    assert writer.batches == batches + 1
    for execution_id in ids:
        expected = [] if execution_id == ids[3] else [1]
        assert await _journal(db, execution_id) == expected
    moved = await executions.get(ids[0])
    assert moved is not None
    assert (moved.step_count, moved.visit_seq, moved.current_step_id) == (1, 2, "a")
    lost = await executions.get(ids[3])
    assert lost is not None
    assert (lost.step_count, lost.owner_node) == (0, "node-b")


async def test_transitions_are_fenced_on_owner_and_status(
    any_store: tuple[Database, ExecutionRepository],
) -> None:
    db, executions = any_store
    now = datetime.now(UTC)
    await executions.create(_record("e1", now), PIN)
    done = {"status": "completed", "owner_node": None, "completed_at": now, "updated_at": now}
    assert not await executions.transition("e1", "node-b", done, _step("e1", 1, now))
    assert await _journal(db, "e1") == []
    assert await executions.transition("e1", NODE, done, replace(_step("e1", 1, now)))
    assert await _journal(db, "e1") == [1]
    # Finished: no longer running, so even its former owner cannot write.
    assert not await executions.advance("e1", NODE, _step("e1", 2, now))
    assert not await executions.transition("e1", NODE, {"updated_at": now})
    record = await executions.get("e1")
    assert record is not None
    assert record.status == "completed"
    steps = await executions.steps("e1")
    assert [(s.seq, s.output) for s in steps] == [(1, {"out": [1, 2]})]


async def test_a_failing_write_fails_alone(store: tuple[Database, ExecutionRepository]) -> None:
    """A write the database refuses (here a journal row that already exists) fails on its own;
    the writes batched with it commit."""
    db, executions = store
    now = datetime.now(UTC)
    for execution_id in ("ok", "dup"):
        await executions.create(_record(execution_id, now), PIN)
    assert await executions.transition("dup", NODE, {"updated_at": now}, _step("dup", 1, now))

    outcomes = await asyncio.gather(
        executions.advance("ok", NODE, _step("ok", 1, now)),
        executions.transition("dup", NODE, {"updated_at": now}, _step("dup", 1, now)),
        return_exceptions=True,
    )

    assert outcomes[0] is True
    assert isinstance(outcomes[1], Exception)
    assert await _journal(db, "ok") == [1]
    assert await _journal(db, "dup") == [1]


async def test_mark_started_is_durable_and_idempotent(
    any_store: tuple[Database, ExecutionRepository],
) -> None:
    db, executions = any_store
    now = datetime.now(UTC)
    await executions.create(_record("e1", now), PIN)
    assert await executions.mark_started("e1", NODE, 1, "a", 1, now)
    assert await executions.mark_started("e1", NODE, 1, "a", 1, now + timedelta(seconds=1))
    assert await executions.was_started("e1", 1)
    async with db.connect() as conn:
        starts = (await conn.execute(sa.select(step_starts.c.started_at))).scalars().all()
    assert starts == [now]


async def test_a_node_that_lost_the_execution_journals_no_start(
    any_store: tuple[Database, ExecutionRepository],
) -> None:
    """The start is fenced like every runner write: the old owner gets False (and so does not
    run the action), and the new owner sees no start, so it runs the step once."""
    db, executions = any_store
    now = datetime.now(UTC)
    await executions.create(_record("e1", now), PIN)
    await _take_over(db, "e1", "node-b")
    assert not await executions.mark_started("e1", NODE, 1, "a", 1, now)
    assert not await executions.was_started("e1", 1)
    assert await executions.mark_started("e1", "node-b", 1, "a", 1, now)
    assert await executions.was_started("e1", 1)


@pytest.mark.parametrize("plain", [False, True], ids=["asyncpg", "sqlalchemy"])
async def test_a_start_racing_a_takeover_waits_for_it_and_is_refused(
    postgres_url: str, plain: bool
) -> None:
    """On PostgreSQL the start locks the execution row (FOR SHARE): a start issued while
    another node's takeover is uncommitted waits for it and then sees the new owner. Reading
    the last committed row instead would journal the start for the old owner, after the new
    one had found none, and both would run the action."""
    db = Database.from_url(postgres_url)
    await db.upgrade()
    try:
        executions = ExecutionRepository(db) if plain else execution_repository(db)
        now = datetime.now(UTC)
        await executions.create(_record("e1", now), PIN)
        async with db.begin() as conn:
            await conn.execute(
                workflow_executions.update()
                .where(workflow_executions.c.id == "e1")
                .values(owner_node="node-b")
            )
            start = asyncio.create_task(executions.mark_started("e1", NODE, 1, "a", 1, now))
            await asyncio.sleep(0.5)  # let the start reach the server while this is open
        async with asyncio.timeout(10):
            assert await start is False
        assert not await executions.was_started("e1", 1)
    finally:
        await db.dispose()


async def test_postgres_writer_reconnects_after_its_connection_is_killed(
    postgres_url: str,
) -> None:
    db = Database.from_url(postgres_url)
    await db.upgrade()
    try:
        executions = execution_repository(db)
        now = datetime.now(UTC)
        await executions.create(_record("e1", now), PIN)
        admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
        try:
            # Every other connection to this test database: the writer's among them.
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        # The writer may notice the closed connection before it writes (and reconnect at
        # once), or only when the write fails (and reconnect for the next one).
        try:
            applied = await executions.advance("e1", NODE, _step("e1", 1, now))
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
        ):
            applied = await executions.advance("e1", NODE, _step("e1", 1, now))
        assert applied
        assert await _journal(db, "e1") == [1]
    finally:
        await db.dispose()
