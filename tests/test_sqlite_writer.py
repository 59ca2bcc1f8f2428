"""The SQLite writer: group commit, ordering, failure isolation, lock waits off the loop, WAL
checkpoints off the loop, and `Prepared` statements that store rows exactly as the async engine
does.

Everything runs against real SQLite files; rows are checked through separate connections so a
write only counts once it is committed where other readers can see it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hearth.store import Database
from hearth.store.sqlite_writer import Prepared, SqliteWriter
from hearth.store.tables import step_runs, workflow_executions, workflows
from tests.support.databases import sqlite_url

SCHEMA = """
CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL);
"""
THREAD_PREFIX = "hearth-sqlite-writer"
CHECKPOINT_THREAD_PREFIX = "hearth-sqlite-checkpoint"
MODES = ["NORMAL", "FULL"]
#: A small checkpoint threshold, so that a few hundred kilobytes of writes cross it.
PAGES = 16
PAGE_SIZE = 4096
#: The WAL's size once it holds `PAGES` frames: past it, a checkpoint is due.
WAL_LIMIT = 32 + PAGES * (PAGE_SIZE + 24)
#: A row filling about half a page: ~50 of them span more than `PAGES` pages.
PAYLOAD = "x" * 2000

Write = Callable[[sqlite3.Connection], Any]


# -- helpers ----------------------------------------------------------------------------------


def read(path: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read through a connection of our own, so only committed rows are seen."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def put(k: str, v: int | None) -> Write:
    def write(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO items (k, v) VALUES (?, ?)", (k, v))
        return k

    return write


def append(tag: str, seen: list[tuple[str, int]] | None = None) -> Write:
    """Log `tag`; `seen` gets the thread the write ran on and the busy timeout it ran under."""

    def write(conn: sqlite3.Connection) -> int:
        if seen is not None:
            (busy_timeout,) = conn.execute("PRAGMA busy_timeout").fetchone()
            seen.append((threading.current_thread().name, busy_timeout))
        cursor = conn.execute("INSERT INTO log (tag) VALUES (?)", (tag,))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    return write


def tags(path: str) -> list[str]:
    return [tag for (tag,) in read(path, "SELECT tag FROM log ORDER BY seq")]


def big(i: int, seen: list[tuple[str, int]] | None = None) -> Write:
    """A log row of about half a page, tagged so that order and loss show."""
    return append(f"{i:05}{PAYLOAD}", seen)


def wal_size(path: str) -> int:
    return os.path.getsize(path + "-wal")


def our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hearth-sqlite")]


async def checkpointed(writer: SqliteWriter, count: int) -> None:
    """Wait (with a guard against hanging, not a time limit) for background checkpoints."""
    async with asyncio.timeout(10):
        while writer.checkpoints < count:
            await asyncio.sleep(0.005)


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A WAL database file with two small tables, as the gateway's engine would leave it."""
    file = str(tmp_path / "writer.db")
    conn = sqlite3.connect(file)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
    finally:
        conn.close()
    return file


@pytest.fixture
def other(path: str) -> Iterator[sqlite3.Connection]:
    """A second connection to the same file, standing in for the async engine or a CLI."""
    conn = sqlite3.connect(path, isolation_level=None)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


@pytest.fixture(params=MODES)
async def writer(request: pytest.FixtureRequest, path: str) -> AsyncIterator[SqliteWriter]:
    """The behaviours every mode shares, checked inline (NORMAL) and on the thread (FULL)."""
    made = SqliteWriter(path, synchronous=request.param, busy_timeout_ms=5000)
    yield made
    await asyncio.wait_for(made.close(), 5)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database.from_url(sqlite_url(tmp_path))
    await database.upgrade()
    yield database
    await database.dispose()


# -- group commit -----------------------------------------------------------------------------


async def test_writes_submitted_together_share_one_commit(writer: SqliteWriter, path: str) -> None:
    """A thousand ready runners must pay for one commit, not a thousand."""
    batches, writes = writer.batches, writer.writes
    futures = [writer.submit(put(f"k{i:02}", i)) for i in range(20)]

    assert await asyncio.gather(*futures) == [f"k{i:02}" for i in range(20)]
    assert (writer.batches, writer.writes) == (batches + 1, writes + 20)
    assert read(path, "SELECT k, v FROM items ORDER BY k") == [(f"k{i:02}", i) for i in range(20)]


async def test_concurrent_runs_share_one_commit(writer: SqliteWriter, path: str) -> None:
    """Tasks that become ready in the same loop iteration (the real runners) group too."""
    batches = writer.batches

    results = await asyncio.gather(*(writer.run(put(f"k{i}", i)) for i in range(10)))

    assert sorted(results) == sorted(f"k{i}" for i in range(10))
    assert writer.batches == batches + 1
    assert read(path, "SELECT count(*) FROM items") == [(10,)]


async def test_awaited_writes_commit_one_by_one(writer: SqliteWriter, path: str) -> None:
    """A runner that waits for its write before the next gets durability per write."""
    for i in range(3):
        assert await writer.run(put(f"k{i}", i)) == f"k{i}"
        assert (writer.batches, writer.writes) == (i + 1, i + 1)
        assert read(path, "SELECT count(*) FROM items") == [(i + 1,)]


async def test_full_mode_groups_what_arrives_while_the_thread_commits(path: str) -> None:
    """In FULL the fsync happens on the thread; what queues meanwhile is the next group."""
    writer = SqliteWriter(path, synchronous="FULL", busy_timeout_ms=5000)
    try:
        first = [writer.submit(append(f"a{i}")) for i in range(5)]
        await asyncio.sleep(0)  # the first group is now on the thread
        second = [writer.submit(append(f"b{i}")) for i in range(5)]
        await asyncio.gather(*first, *second)
    finally:
        await writer.close()

    assert (writer.batches, writer.writes) == (2, 10)
    assert tags(path) == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]


# -- order ------------------------------------------------------------------------------------


async def test_writes_apply_in_submission_order(writer: SqliteWriter, path: str) -> None:
    """A later transition of the same execution must never be overwritten by an earlier one."""
    await writer.run(put("x", -1))

    def set_x(value: int) -> Write:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE items SET v = ? WHERE k = 'x'", (value,))
            conn.execute("INSERT INTO log (tag) VALUES (?)", (str(value),))

        return write

    futures = [writer.submit(set_x(i)) for i in range(10)]
    await asyncio.sleep(0)  # the first ten are being committed (inline, or on the thread)
    futures += [writer.submit(set_x(i)) for i in range(10, 20)]
    await asyncio.gather(*futures)

    assert read(path, "SELECT v FROM items WHERE k = 'x'") == [(19,)]
    assert tags(path) == [str(i) for i in range(20)]


# -- failures ---------------------------------------------------------------------------------


async def test_a_bad_write_fails_alone(writer: SqliteWriter, path: str) -> None:
    """One runner's constraint violation must not cost its batch-mates their commit."""
    await writer.run(put("taken", 0))

    def half_then_raise(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (k, v) VALUES ('half', 1)")
        raise ValueError("the write's own code failed after a statement")

    futures = [
        writer.submit(put("a", 1)),
        writer.submit(put("taken", 2)),  # PRIMARY KEY
        writer.submit(put("b", None)),  # NOT NULL
        writer.submit(half_then_raise),
        writer.submit(put("c", 3)),
    ]
    results = await asyncio.gather(*futures, return_exceptions=True)

    assert results[0] == "a"
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert isinstance(results[3], ValueError)
    assert results[4] == "c"
    # Nothing of the failed writes survives, not even the statement before the raise.
    assert read(path, "SELECT k, v FROM items ORDER BY k") == [
        ("a", 1),
        ("c", 3),
        ("taken", 0),
    ]
    # No transaction was left open: the writer goes on committing.
    assert await writer.run(put("d", 4)) == "d"
    assert read(path, "SELECT v FROM items WHERE k = 'd'") == [(4,)]


async def test_a_lone_bad_write_raises(writer: SqliteWriter, path: str) -> None:
    await writer.run(put("a", 1))

    with pytest.raises(sqlite3.IntegrityError):
        await writer.run(put("a", 2))

    assert read(path, "SELECT v FROM items WHERE k = 'a'") == [(1,)]
    assert await writer.run(put("b", 2)) == "b"


# -- the write lock held elsewhere ------------------------------------------------------------


async def test_a_held_write_lock_is_waited_for_off_the_loop(
    writer: SqliteWriter, path: str, other: sqlite3.Connection
) -> None:
    """The engine or another process may hold the lock; the loop must keep serving meanwhile,
    and a write queued behind the waiting one must not overtake it."""
    seen: list[tuple[str, int]] = []
    await writer.run(append("warm"))  # the writer's connection is open
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO log (tag) VALUES ('other')")

    finished: list[str] = []
    blocked = writer.submit(append("blocked", seen))
    blocked.add_done_callback(lambda _: finished.append("blocked"))
    await asyncio.sleep(0)  # its batch found the lock taken
    later = writer.submit(append("later", seen))
    later.add_done_callback(lambda _: finished.append("later"))

    pending_while_ticking: list[tuple[bool, bool]] = []

    async def tick_then_release() -> None:
        """Other work on the loop: it can only run if the waiting write does not block it."""
        for _ in range(5):
            await asyncio.sleep(0.01)
            pending_while_ticking.append((blocked.done(), later.done()))
        other.execute("COMMIT")

    releasing = asyncio.create_task(tick_then_release())
    blocked_seq, later_seq = await asyncio.wait_for(asyncio.gather(blocked, later), 5)
    await releasing

    # The loop kept running while both writes still waited for the lock...
    assert pending_while_ticking == [(False, False)] * 5
    # ...and once it was free they committed in the order they were submitted.
    assert finished == ["blocked", "later"]
    assert blocked_seq < later_seq
    assert tags(path) == ["warm", "other", "blocked", "later"]
    # The wait happened on the writer's thread, under the configured busy timeout.
    assert seen[0][0].startswith(THREAD_PREFIX)
    assert seen[0][1] == 5000


async def test_a_lock_held_past_the_busy_timeout_fails_the_write(
    path: str, other: sqlite3.Connection
) -> None:
    writer = SqliteWriter(path, synchronous="NORMAL", busy_timeout_ms=50)
    try:
        await writer.run(append("warm"))
        other.execute("BEGIN IMMEDIATE")

        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await asyncio.wait_for(writer.run(append("refused")), 5)

        other.execute("COMMIT")
        await writer.run(append("after"))
    finally:
        await writer.close()

    assert tags(path) == ["warm", "after"]


# -- modes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synchronous", "level", "on_thread", "busy_timeout"),
    [("NORMAL", 1, False, 0), ("FULL", 2, True, 5000)],
)
async def test_synchronous_mode_sets_the_pragma_and_where_commits_run(
    path: str, synchronous: str, level: int, on_thread: bool, busy_timeout: int
) -> None:
    """FULL commits fsync, so they must leave the loop thread; NORMAL ones are cheap inline,
    where they must never wait for a lock (a zero busy timeout: the thread does the waiting)."""
    writer = SqliteWriter(path, synchronous=synchronous, busy_timeout_ms=5000)
    seen: list[tuple[str, int]] = []
    try:

        def pragmas(conn: sqlite3.Connection) -> tuple[Any, ...]:
            return tuple(
                conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("synchronous", "journal_mode", "foreign_keys")
            )

        assert await writer.run(pragmas) == (level, "wal", 1)
        await asyncio.gather(*(writer.run(append(f"t{i}", seen)) for i in range(3)))
    finally:
        await writer.close()

    assert tags(path) == ["t0", "t1", "t2"]
    loop_thread = threading.current_thread().name
    assert len(seen) == 3
    assert all(name.startswith(THREAD_PREFIX) == on_thread for name, _ in seen)
    assert all((name == loop_thread) != on_thread for name, _ in seen)
    assert {timeout for _, timeout in seen} == {busy_timeout}


# -- checkpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize("synchronous", MODES)
async def test_the_writer_never_checkpoints_inside_its_commits(
    path: str, other: sqlite3.Connection, synchronous: str
) -> None:
    """An automatic checkpoint runs inside the commit that crosses `wal_autocheckpoint` pages:
    on the loop thread that is tens of milliseconds of copying and fsync. Other connections
    (the async engine's) keep SQLite's default; they commit on their own threads."""
    # Our own checkpoints far away, so that only SQLite's automatic one could move pages.
    writer = SqliteWriter(
        path, synchronous=synchronous, busy_timeout_ms=5000, checkpoint_pages=100_000
    )
    database_size = os.path.getsize(path)
    try:
        level = await writer.run(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone())
        # One commit of well over SQLite's default 1000 pages.
        await asyncio.gather(*(writer.submit(big(i)) for i in range(2500)))
        size_after_commit = os.path.getsize(path)
    finally:
        await writer.close()

    assert level == (0,)
    assert other.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    assert size_after_commit == database_size  # every page still only in the WAL
    assert writer.checkpoints == 0


@pytest.mark.parametrize("synchronous", MODES)
async def test_a_checkpoint_runs_once_enough_was_written(path: str, synchronous: str) -> None:
    """The pages reach the database file without any other connection checkpointing, and the
    WAL starts over instead of growing."""
    writer = SqliteWriter(
        path, synchronous=synchronous, busy_timeout_ms=5000, checkpoint_pages=PAGES
    )
    database_size = os.path.getsize(path)
    try:
        # One group commit of ~50 pages, past the threshold.
        await asyncio.gather(*(writer.submit(big(i)) for i in range(100)))
        wal_before = wal_size(path)
        await checkpointed(writer, 1)
        database_after = os.path.getsize(path)
        await writer.run(big(100))
        wal_after = wal_size(path)
    finally:
        await writer.close()

    assert wal_before > WAL_LIMIT
    assert database_after >= database_size + PAGES * PAGE_SIZE
    # The commit after a complete checkpoint restarted the WAL and cut it back to the limit.
    assert wal_after <= WAL_LIMIT
    assert writer.checkpoints == 1
    assert read(path, "SELECT count(*) FROM log") == [(101,)]


@pytest.mark.parametrize("synchronous", MODES)
async def test_the_wal_starts_over_though_writes_never_pause(path: str, synchronous: str) -> None:
    """SQLite only starts the WAL over if it was entirely copied when a write begins; with
    writes always arriving during the background rounds that never happens by itself, and the
    WAL would grow for as long as the gateway runs."""
    writer = SqliteWriter(
        path, synchronous=synchronous, busy_timeout_ms=5000, checkpoint_pages=PAGES
    )
    sizes: list[int] = []
    try:
        async with asyncio.timeout(30):  # against hanging only
            while writer.checkpoints < 3:
                await writer.run(big(len(sizes)))
                sizes.append(wal_size(path))
    finally:
        await writer.close()

    # The file was cut back to the limit when the WAL restarted, while writes went on.
    assert any(later < earlier for earlier, later in itertools.pairwise(sizes))
    assert [tag[:5] for tag in tags(path)] == [f"{i:05}" for i in range(len(sizes))]


async def test_the_commit_that_restarts_the_wal_runs_on_the_thread(path: str) -> None:
    """Restarting the WAL syncs its header, even in NORMAL: that one commit leaves the loop."""
    writer = SqliteWriter(path, synchronous="NORMAL", busy_timeout_ms=5000, checkpoint_pages=PAGES)
    seen: list[tuple[str, int]] = []
    try:
        await asyncio.gather(*(writer.submit(big(i)) for i in range(100)))
        await checkpointed(writer, 1)
        await writer.run(append("restarts", seen))
        await writer.run(append("inline again", seen))
    finally:
        await writer.close()

    assert seen[0][0].startswith(THREAD_PREFIX)
    assert seen[1][0] == threading.current_thread().name
    assert tags(path)[-2:] == ["restarts", "inline again"]


@pytest.mark.parametrize("synchronous", MODES)
async def test_writes_go_on_while_a_checkpoint_is_under_way(path: str, synchronous: str) -> None:
    """Copying the WAL must never hold up writes (in FULL it must not take the writer's
    thread), and however often the threshold is crossed meanwhile, only one checkpoint is in
    flight."""
    writer = SqliteWriter(
        path, synchronous=synchronous, busy_timeout_ms=5000, checkpoint_pages=PAGES
    )
    # Keep the checkpoint thread busy, so that the due checkpoint stays under way.
    gate = threading.Event()
    writer._checkpoint_thread().submit(gate.wait, 10)
    try:
        for round_ in range(5):
            await asyncio.gather(*(writer.submit(big(round_ * 100 + i)) for i in range(100)))
        checkpoints_meanwhile = writer.checkpoints
        threads_meanwhile = our_threads()
        gate.set()
        await checkpointed(writer, 1)
        # Nothing new was due after the one in flight: a later write finds none running.
        await writer.run(append("after"))
    finally:
        gate.set()
        await writer.close()

    assert checkpoints_meanwhile == 0
    assert [n for n in threads_meanwhile if n.startswith(CHECKPOINT_THREAD_PREFIX)] != []
    assert writer.checkpoints == 1
    assert len(tags(path)) == 501


# -- close ------------------------------------------------------------------------------------


@pytest.mark.parametrize("synchronous", MODES)
async def test_close_checkpoints_and_stops_its_threads(
    path: str, other: sqlite3.Connection, synchronous: str
) -> None:
    """Shutdown leaves the database file complete and no thread of ours behind."""
    # Another connection stays open (as the engine's does), so SQLite's own checkpoint on
    # closing the last connection does not happen: only the writer's can empty the WAL.
    assert other.execute("SELECT count(*) FROM log").fetchone() == (0,)
    writer = SqliteWriter(path, synchronous=synchronous, busy_timeout_ms=5000)
    await asyncio.gather(*(writer.submit(append(f"t{i}")) for i in range(20)))
    wal_before = wal_size(path)
    threads_before = our_threads()

    await asyncio.wait_for(writer.close(), 5)

    assert wal_before > 0
    assert writer.checkpoints == 0  # far below the threshold: only the closing one ran
    assert wal_size(path) == 0  # TRUNCATE: every frame is in the database file
    assert our_threads() == []
    assert bool(threads_before) == (synchronous == "FULL")  # the writer's thread, in FULL
    assert other.execute("SELECT count(*) FROM log").fetchone() == (20,)


async def test_close_does_not_wait_long_for_a_locked_database(
    path: str, other: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """A closing checkpoint that cannot finish (another connection writing) is left undone,
    after a short wait, not the writer's long busy timeout."""
    writer = SqliteWriter(path, synchronous="NORMAL", busy_timeout_ms=60_000)
    await writer.run(append("a"))
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO log (tag) VALUES ('other')")

    with caplog.at_level(logging.DEBUG, logger="hearth.store.sqlite_writer"):
        await asyncio.wait_for(writer.close(), 10)
    other.execute("COMMIT")

    assert our_threads() == []
    assert wal_size(path) > 0
    records = [r for r in caplog.records if r.name == "hearth.store.sqlite_writer"]
    assert [r.levelno for r in records] == [logging.DEBUG]
    assert "incomplete" in records[0].getMessage()
    assert tags(path) == ["a", "other"]


@pytest.mark.parametrize("synchronous", MODES)
async def test_close_waits_for_queued_writes(path: str, synchronous: str) -> None:
    """Shutdown must not drop a transition a runner already handed over."""
    writer = SqliteWriter(path, synchronous=synchronous, busy_timeout_ms=5000)
    futures = [writer.submit(append(f"t{i}")) for i in range(5)]

    await writer.close()

    assert all(future.done() for future in futures)
    assert [future.result() for future in futures] == [1, 2, 3, 4, 5]
    assert tags(path) == [f"t{i}" for i in range(5)]


async def test_close_waits_for_a_write_waiting_on_the_lock(
    path: str, other: sqlite3.Connection
) -> None:
    writer = SqliteWriter(path, synchronous="NORMAL", busy_timeout_ms=5000)
    await writer.run(append("warm"))
    other.execute("BEGIN IMMEDIATE")
    pending = writer.submit(append("blocked"))
    asyncio.get_running_loop().call_later(0.05, lambda: other.execute("COMMIT"))

    await asyncio.wait_for(writer.close(), 5)

    assert pending.done()
    assert tags(path) == ["warm", "blocked"]


# -- a database that cannot be opened ---------------------------------------------------------


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
async def test_a_database_that_cannot_be_opened_fails_the_write(
    tmp_path: Path, synchronous: str
) -> None:
    """A caller must see the failure; a returned exception object reads as a truthy success."""
    writer = SqliteWriter(
        str(tmp_path / "missing" / "h.db"), synchronous=synchronous, busy_timeout_ms=100
    )

    with pytest.raises(sqlite3.OperationalError):
        await asyncio.wait_for(writer.run(lambda conn: True), 1)

    await asyncio.wait_for(writer.close(), 1)


# -- Prepared ---------------------------------------------------------------------------------

#: Two hours east of UTC, so a lost or ignored offset shows up as a different instant.
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))


def definition(**changes: Any) -> dict[str, Any]:
    return {
        "workflow_id": "wf",
        "content_hash": "h1",
        "source": "steps: []",
        "path": "wf.yaml",
        "created_at": WHEN,
    } | changes


def execution(execution_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": execution_id,
        "workflow_id": "wf",
        "content_hash": "h1",
        "status": "running",
        "triggered_by": "manual",
        "input": {"items": [1, 2.5, None, "é"], "nested": {"ok": True}},
        "current_step_id": "first",
        "visit_seq": 0,
        "attempt": 1,
        "step_count": 0,
        "waiting_for": None,
        "wake_at": None,
        "error": None,
        "cancel_requested": True,
        "scheduled_for": None,
        "owner_node": "node-a",
        "lease_expires_at": WHEN + timedelta(seconds=30),
        "started_at": WHEN,
        "updated_at": WHEN,
        "completed_at": None,
        "next_attempt_at": WHEN + timedelta(seconds=5),
        "crash_count": 0,
        "crash_seq": None,
    } | changes


def step(execution_id: str, seq: int) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "seq": seq,
        "step_id": f"s{seq}",
        "attempt": 1,
        "status": "succeeded",
        "output": {"seq": seq, "list": [seq]},
        "error": None,
        "started_at": WHEN + timedelta(seconds=seq),
        "finished_at": WHEN + timedelta(seconds=seq, milliseconds=5),
        "next_step_id": f"s{seq + 1}",
        "next_visit_seq": seq,
        "next_attempt": 1,
    }


def writer_of(db: Database) -> SqliteWriter:
    assert db.writer is not None, "Database.from_url gives SQLite files a writer"
    return db.writer


async def test_prepared_rows_read_back_like_engine_rows(db: Database) -> None:
    """Readers go through the async engine: aware UTC datetimes, JSON and booleans must come
    back from a `Prepared` row exactly as from a row the engine wrote itself."""
    insert_definition = Prepared(workflows.insert())
    insert_execution = Prepared(workflow_executions.insert())

    def write(conn: sqlite3.Connection) -> None:
        insert_definition.execute(conn, definition())
        insert_execution.execute(conn, execution("by-writer"))

    await writer_of(db).run(write)
    async with db.begin() as conn:
        await conn.execute(workflow_executions.insert().values(**execution("by-engine")))

    async with db.connect() as conn:
        created_at = (await conn.execute(sa.select(workflows.c.created_at))).scalar_one()
        rows = {
            row.id: row._asdict()
            for row in await conn.execute(workflow_executions.select().order_by("id"))
        }

    assert created_at == WHEN
    assert created_at.tzinfo is UTC
    mine, theirs = rows["by-writer"], rows["by-engine"]
    assert mine["input"] == execution("x")["input"]
    assert mine["cancel_requested"] is True
    assert mine["started_at"] == WHEN
    assert mine["started_at"].tzinfo is UTC
    assert mine["lease_expires_at"] == WHEN + timedelta(seconds=30)
    assert {**mine, "id": None} == {**theirs, "id": None}
    # Stored identically too, so SQL comparisons (lease expiry, ordering) treat both alike.
    raw = read(writer_of(db).path, "SELECT * FROM workflow_executions ORDER BY id")
    assert raw[0][1:] == raw[1][1:]


async def test_prepared_stores_a_json_none_as_the_engine_does(db: Database) -> None:
    """A step without output: both paths must store JSON `null`, not one of them SQL NULL, or
    `IS NULL` queries would tell rows apart by which path wrote them."""
    insert_definition = Prepared(workflows.insert())
    insert_execution = Prepared(workflow_executions.insert())
    insert_step = Prepared(step_runs.insert())

    def write(conn: sqlite3.Connection) -> None:
        insert_definition.execute(conn, definition())
        insert_execution.execute(conn, execution("e"))
        insert_step.execute(conn, step("e", 1) | {"output": None})

    await writer_of(db).run(write)
    async with db.begin() as conn:
        await conn.execute(step_runs.insert().values(**(step("e", 2) | {"output": None})))
    raw = read(writer_of(db).path, "SELECT seq, output FROM step_runs ORDER BY seq")
    assert raw == [(1, "null"), (2, "null")]


async def test_prepared_rejects_naive_datetimes(db: Database) -> None:
    """The UTC column's own check runs on this path too, and the write fails alone."""
    insert_definition = Prepared(workflows.insert())
    naive = definition(created_at=datetime(2024, 1, 1))

    with pytest.raises(ValueError, match="naive"):
        await writer_of(db).run(lambda conn: insert_definition.execute(conn, naive))

    async with db.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(workflows))).scalar() == 0


async def test_prepared_update_binds_literals_of_its_where_clause(db: Database) -> None:
    """The fence `status = 'running'` is part of the statement; callers pass only the values."""
    ex = workflow_executions.c
    fenced = Prepared(
        workflow_executions.update().where(
            ex.id == sa.bindparam("w_id"),
            ex.owner_node == sa.bindparam("w_node"),
            ex.status == "running",
        ),
        column_keys=["status", "updated_at"],
    )
    later = WHEN + timedelta(minutes=1)

    def setup(conn: sqlite3.Connection) -> None:
        Prepared(workflows.insert()).execute(conn, definition())
        Prepared(workflow_executions.insert()).execute_many(
            conn, [execution("e1"), execution("e2", status="paused")]
        )

    def pause(execution_id: str, node: str) -> Write:
        values = {"status": "paused", "updated_at": later, "w_id": execution_id, "w_node": node}
        return lambda conn: fenced.execute(conn, values).rowcount

    writer = writer_of(db)
    await writer.run(setup)
    assert await writer.run(pause("e1", "node-b")) == 0  # not the owner
    assert await writer.run(pause("e1", "node-a")) == 1  # running and owned
    assert await writer.run(pause("e1", "node-a")) == 0  # no longer running
    assert await writer.run(pause("e2", "node-a")) == 0  # never was running

    async with db.connect() as conn:
        rows = {
            row.id: (row.status, row.updated_at)
            for row in await conn.execute(sa.select(ex.id, ex.status, ex.updated_at))
        }
    assert rows == {"e1": ("paused", later), "e2": ("paused", WHEN)}


async def test_prepared_execute_many_and_foreign_keys(db: Database) -> None:
    """The journal's rows reference their execution; the writer must enforce that link."""
    writer = writer_of(db)
    insert_step = Prepared(step_runs.insert())

    def setup(conn: sqlite3.Connection) -> None:
        Prepared(workflows.insert()).execute(conn, definition())
        Prepared(workflow_executions.insert()).execute(conn, execution("e1"))
        insert_step.execute_many(conn, [step("e1", seq) for seq in (1, 2, 3)])

    await writer.run(setup)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await writer.run(lambda conn: insert_step.execute(conn, step("nobody", 1)))

    async with db.connect() as conn:
        rows = [
            row._asdict()
            for row in await conn.execute(step_runs.select().order_by(step_runs.c.seq))
        ]
    assert rows == [step("e1", seq) for seq in (1, 2, 3)]
    assert all(row["finished_at"].tzinfo is UTC for row in rows)
