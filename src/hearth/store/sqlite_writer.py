"""Group-committed writes to the SQLite file, without a thread hop per statement.

The hot transitions (a workflow step journalled, a schedule tick claimed) are small fixed
statements. Sent through the async engine, each one costs SQLAlchemy statement handling plus
three or four hops between the event loop and aiosqlite's thread, far more than SQLite's commit
itself; that kept durable steps/s to a few percent of the raw commit rate.

`SqliteWriter` instead runs each write as a plain function over one `sqlite3` connection, and
commits every write submitted during one event-loop iteration in one transaction (group
commit): a runner still waits for its own transition to be durable before it goes on, but a
thousand runners that are ready together share one commit.

- In `synchronous=NORMAL` (or OFF) a WAL commit is a write to the page cache, not an fsync, so
  the batch runs right on the loop thread: cheaper than handing it to a thread and back.
- In FULL/EXTRA every commit is an fsync, which must not stall the loop: batches run on the
  writer's own thread, and whatever is submitted meanwhile forms the next batch.
- The loop never waits for a lock: inline batches use a zero busy timeout, and if another
  connection (the async engine, another process) holds the write lock, the batch goes to the
  thread, which waits with the configured busy timeout. Later batches queue behind it so that
  writes keep their submission order.

A write function receives the connection inside an open transaction and must not commit. If
one write in a batch raises, the batch is rolled back and every write is retried on its own
(on the thread), so one bad write fails alone.

Checkpoints never run on the loop. SQLite's automatic checkpoint runs inside whichever commit
crosses `wal_autocheckpoint` pages, copying them into the database file and fsyncing it even in
NORMAL: on this connection that would stall the loop for tens of milliseconds. So the writer's
connection has it off, and once about as many pages were appended to the WAL (a `stat` of the
file, every few dozen writes) PASSIVE checkpoints run on a connection and thread of their own,
never the writer's thread, where blocked batches wait. Writes go on meanwhile, which means the
WAL is never entirely copied when the next write begins, and SQLite only starts the WAL over
from its beginning when it is: it would grow for as long as writes never pause. So once the
rounds have caught up to a small remainder (or after a few rounds), the last round runs with
this writer's batches held back (the loop goes on; only those writes wait, for about one
fsync). The commit that then restarts the WAL syncs its header, so it goes to the writer's
thread even in NORMAL. `close` ends with a TRUNCATE checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql.compiler import SQLCompiler

log = logging.getLogger("hearth.store.sqlite_writer")

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]
_Pending = tuple[Write, "asyncio.Future[Any]"]

_DIALECT = sqlite_dialect.dialect()
#: Modes whose commit is not an fsync: cheap enough to run on the event loop.
_INLINE_MODES = frozenset({"OFF", "NORMAL"})
#: SQLite's own `wal_autocheckpoint` default: about 4 MB of WAL at the default page size.
DEFAULT_CHECKPOINT_PAGES = 1000
#: Writes between two looks at the WAL's size: a `stat` per commit would be wasted at 1000
#: commits a second, while a few dozen small writes add only some dozens of pages.
_WAL_CHECK_WRITES = 32
#: Background PASSIVE rounds before the last one, which holds writes back. They stop early once
#: a round found at most `_CATCH_UP_FRAMES` new frames: about as few arrive while it runs, and
#: that little is what the last round copies while writes wait.
_CATCH_UP_ROUNDS = 4
_CATCH_UP_FRAMES = 100
#: SQLite's WAL layout: a file header, then one header per frame (page).
_WAL_HEADER_BYTES = 32
_WAL_FRAME_HEADER_BYTES = 24
#: The closing checkpoint may wait this long for a lock; a busy database must not hang
#: shutdown, and whatever stays in the WAL is checkpointed by the next connection anyway.
_CLOSING_BUSY_TIMEOUT_MS = 250
#: (busy, frames in the WAL, frames copied into the database), as `wal_checkpoint` reports.
_CheckpointResult = tuple[int, int, int]


class _Busy(Exception):
    """Another connection holds the write lock; the batch must wait on the thread."""


class Prepared:
    """A SQLAlchemy Core statement compiled once for SQLite, run on a plain `sqlite3` cursor.

    The SQL and the conversion of each value (datetimes, JSON, booleans) come from the table
    definitions through SQLAlchemy's own compiler and type processors, so rows written here read
    back through the async engine exactly as rows written there.
    """

    def __init__(self, statement: sa.ClauseElement, column_keys: Sequence[str] | None = None):
        compiled = statement.compile(
            dialect=_DIALECT, column_keys=list(column_keys) if column_keys is not None else None
        )
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        names = compiled.positiontup or []
        self._names = tuple(names)
        processors = [
            compiled.binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            for name in names
        ]
        #: Only the positions whose type converts (datetimes, JSON, booleans); strings and
        #: integers go to sqlite3 as they are. This runs for every row of every hot write.
        self._converters = tuple(
            (index, processor, processor(None))
            for index, processor in enumerate(processors)
            if processor
        )
        #: Values written into the statement itself (`status == 'running'`) need no argument.
        self._fixed = {
            name: compiled.binds[name].value for name in names if not compiled.binds[name].required
        }

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        fixed = self._fixed
        row = [values[name] if name in values else fixed[name] for name in self._names]
        for index, convert, converted_none in self._converters:
            # None converts too (a JSON column stores JSON `null`, as the engine does), always
            # to the same value, so that is worked out once.
            value = row[index]
            row[index] = converted_none if value is None else convert(value)
        return row

    def execute(self, conn: sqlite3.Connection, values: Mapping[str, Any]) -> sqlite3.Cursor:
        return conn.execute(self.sql, self.params(values))

    def execute_many(self, conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        conn.executemany(self.sql, [self.params(row) for row in rows])


class PreparedUpdates:
    """One conditional UPDATE (`where`) compiled per set of columns it is asked to set.

    Hot transitions set a few different column sets (a step, a pause, an end), each a fixed
    statement once compiled.
    """

    def __init__(
        self,
        table: sa.Table,
        *where: sa.ColumnElement[bool],
        always: Mapping[str, Any] | None = None,
    ) -> None:
        """`always`: SET clauses every statement carries (such as a version bump)."""
        statement = table.update().where(*where)
        self._statement = statement.values(**always) if always else statement
        self._compiled: dict[tuple[str, ...], Prepared] = {}

    def setting(self, keys: Iterable[str]) -> Prepared:
        key = tuple(keys)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = Prepared(self._statement, column_keys=key)
        return found


class SqliteWriter:
    """One writing connection to a SQLite file, with group commit (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str,
        busy_timeout_ms: int,
        checkpoint_pages: int = DEFAULT_CHECKPOINT_PAGES,
    ) -> None:
        self.path = path
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = busy_timeout_ms
        self.checkpoint_pages = checkpoint_pages
        self._inline = self.synchronous in _INLINE_MODES
        self._conn: sqlite3.Connection | None = None
        self._busy_timeout_set: int | None = None
        self._pending: list[_Pending] = []
        self._flush_scheduled = False
        self._in_thread = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # commits made; with `writes` this shows how much grouping happened
        self.writes = 0
        self.checkpoints = 0  # background checkpoints that copied the whole WAL
        self._wal_path = path + "-wal"
        #: The WAL's size past which a checkpoint is due; known once connected (page size).
        self._wal_limit: int | None = None
        self._wal_check_at = _WAL_CHECK_WRITES  # `writes` at which to look at the WAL again
        #: The WAL's size when the last checkpoint started, 0 once it completed or the WAL
        #: restarted: while readers keep checkpoints from completing, the next one waits for
        #: as many new pages.
        self._wal_base = 0
        #: A checkpoint completed: the next commit restarts the WAL, which syncs its header.
        self._wal_restart_due = False
        self._checkpointing: asyncio.Task[None] | None = None
        #: New batches wait: the last round of a checkpoint is running, or waits (`_held`) for
        #: the batch on the writer's thread to finish.
        self._holding = False
        self._held: asyncio.Future[None] | None = None
        self._checkpoint_executor: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None

    # -- public -------------------------------------------------------------------------------

    def submit(self, write: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `write` for the next group commit; the future resolves once it is durable."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((write, future))
        self._idle.clear()
        if not self._flush_scheduled and not self._in_thread and not self._holding:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    async def run(self, write: Callable[[sqlite3.Connection], T]) -> T:
        return await self.submit(write)

    async def close(self) -> None:
        """Let queued writes commit, checkpoint, then close the connections and the threads.

        The closing checkpoint runs before the writer's connection closes: were that the last
        connection, SQLite would checkpoint inside its close, on the loop.
        """
        await self._idle.wait()
        while (cycle := self._checkpointing) is not None and not cycle.done():
            await asyncio.wait([cycle])
            await self._idle.wait()
        loop = asyncio.get_running_loop()
        if self._conn is not None:
            await loop.run_in_executor(
                self._checkpoint_thread(),
                self._checkpoint,
                "TRUNCATE",
                min(self.busy_timeout_ms, _CLOSING_BUSY_TIMEOUT_MS),
            )
            self._conn.close()
            self._conn = None
        if self._checkpoint_executor is not None:
            await loop.run_in_executor(self._checkpoint_executor, self._close_checkpoint_conn)
            self._checkpoint_executor.shutdown(wait=True)
            self._checkpoint_executor = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- batching -----------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._holding:
            return  # `_release` flushes
        batch, self._pending = self._pending, []
        if not batch:
            self._idle.set()
            return
        inline = self._inline and not self._wal_restart_due
        self._wal_restart_due = False
        if inline:
            try:
                outcomes = self._commit(batch, wait=False)
            except _Busy:
                pass
            except Exception as exc:  # the connection itself failed: nothing was written
                self._deliver(batch, [_Failure(exc)] * len(batch))
                self._after_batch()
                return
            else:
                if outcomes is not None:
                    self._deliver(batch, outcomes)
                    self._after_batch()
                    return
        self._to_thread(batch)

    def _to_thread(self, batch: list[_Pending]) -> None:
        assert self._loop is not None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hearth-sqlite-writer")
        self._in_thread = True
        done = self._loop.run_in_executor(self._executor, self._commit_waiting, batch)
        done.add_done_callback(lambda finished: self._thread_done(batch, finished))

    def _thread_done(self, batch: list[_Pending], finished: asyncio.Future[list[Any]]) -> None:
        self._in_thread = False
        error = finished.exception()
        if error is not None:
            self._deliver(batch, [_Failure(error)] * len(batch))
        else:
            self._deliver(batch, finished.result())
        self._after_batch()

    def _after_batch(self) -> None:
        if self.writes >= self._wal_check_at:
            self._check_wal()
        if self._held is not None and not self._in_thread:
            held, self._held = self._held, None
            held.set_result(None)
        self._flush_or_idle()

    def _flush_or_idle(self) -> None:
        if self._pending:
            if not self._flush_scheduled and not self._holding:
                self._flush_scheduled = True
                assert self._loop is not None
                self._loop.call_soon(self._flush)
        elif not self._in_thread:
            self._idle.set()

    # -- checkpoints (their own connection, on their own thread) ------------------------------

    def _check_wal(self) -> None:
        """Start a checkpoint once enough was appended to the WAL since the last one.

        The writer's connection truncates the WAL back to `_wal_limit` when it restarts it (its
        `journal_size_limit`), so the file only grows past that limit once as many pages were
        appended since the restart: the file's size is the whole measurement.
        """
        self._wal_check_at = self.writes + _WAL_CHECK_WRITES
        limit = self._wal_limit
        if self._checkpointing is not None or limit is None:
            return
        try:
            size = os.stat(self._wal_path).st_size
        except OSError:  # no WAL (yet, or any more): nothing to checkpoint
            return
        if size <= limit:
            self._wal_base = 0
            return
        if self._wal_base and size - self._wal_base < limit - _WAL_HEADER_BYTES:
            return
        self._wal_base = size
        assert self._loop is not None
        cycle = self._loop.create_task(self._checkpoint_cycle())
        cycle.add_done_callback(self._checkpoint_cycle_done)
        self._checkpointing = cycle

    async def _checkpoint_cycle(self) -> None:
        """PASSIVE rounds off the loop until the WAL is copied up to a small remainder, then a
        last round with batches held, after which the next commit can restart the WAL."""
        previous: int | None = None
        for _ in range(_CATCH_UP_ROUNDS):
            result = await self._checkpoint_round()
            if result is None:
                return  # busy, or readers still need older pages: retry when due again
            frames = result[1]
            if previous is not None and frames < previous:
                self._wal_base = 0  # the WAL restarted in a pause between writes
                return
            if previous is not None and frames - previous <= _CATCH_UP_FRAMES:
                break
            previous = frames
        await self._hold()
        try:
            if await self._checkpoint_round() is not None:
                self._wal_base = 0
                self.checkpoints += 1
        finally:
            self._release()

    async def _checkpoint_round(self) -> _CheckpointResult | None:
        """One PASSIVE checkpoint on its thread; the result if it copied the whole WAL."""
        assert self._loop is not None
        result = await self._loop.run_in_executor(
            self._checkpoint_thread(), self._checkpoint, "PASSIVE", 0
        )
        if result is None:
            return None
        busy, frames, copied = result
        if busy or copied != frames:
            return None
        if frames > 0:
            self._wal_restart_due = self._inline
        return result

    async def _hold(self) -> None:
        self._holding = True
        if self._in_thread:
            assert self._loop is not None
            self._held = self._loop.create_future()
            await self._held

    def _release(self) -> None:
        self._holding = False
        if self._held is not None:  # cancelled while waiting for the thread
            self._held.cancel()
            self._held = None
        self._flush_or_idle()

    def _checkpoint_cycle_done(self, cycle: asyncio.Task[None]) -> None:
        self._checkpointing = None
        if cycle.cancelled():
            return
        error = cycle.exception()
        if error is not None:
            log.warning("WAL checkpoint of %s failed: %r", self.path, error)

    def _checkpoint_thread(self) -> ThreadPoolExecutor:
        if self._checkpoint_executor is None:
            self._checkpoint_executor = ThreadPoolExecutor(
                1, thread_name_prefix="hearth-sqlite-checkpoint"
            )
        return self._checkpoint_executor

    def _checkpoint(self, mode: str, busy_timeout_ms: int) -> _CheckpointResult | None:
        """Runs on the checkpoint thread; never raises, a failed checkpoint is retried when the
        next one is due."""
        try:
            conn = self._checkpoint_conn
            if conn is None:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=0
                )
                self._checkpoint_conn = conn
                # The checkpoint's syncs follow this connection's setting, not the writer's.
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            busy, frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                log.debug("WAL checkpoint (%s) skipped, database busy: %s", mode, exc)
                return None
            log.warning("WAL checkpoint (%s) of %s failed: %s", mode, self.path, exc)
            self._close_checkpoint_conn()
            return None
        except Exception as exc:
            log.warning("WAL checkpoint (%s) of %s failed: %r", mode, self.path, exc)
            self._close_checkpoint_conn()
            return None
        if busy:
            log.debug(
                "WAL checkpoint (%s) incomplete: %s of %s frames copied", mode, copied, frames
            )
        return int(busy), int(frames), int(copied)

    def _close_checkpoint_conn(self) -> None:
        conn, self._checkpoint_conn = self._checkpoint_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @staticmethod
    def _deliver(batch: list[_Pending], outcomes: list[Any]) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.cancelled():
                continue
            if isinstance(outcome, _Failure):
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome)

    # -- the connection (loop thread or writer thread, never both at once) ---------------------

    def _connection(self, busy_timeout_ms: int) -> sqlite3.Connection:
        if self._conn is None:
            # No waiting inside connect either: on the loop thread the busy timeout is 0.
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
            try:
                conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.execute("PRAGMA foreign_keys=ON")
                # Checkpoints happen on their own thread (`_check_wal`), never in a commit here.
                conn.execute("PRAGMA wal_autocheckpoint=0")
                (page_size,) = conn.execute("PRAGMA page_size").fetchone()
                wal_limit = _WAL_HEADER_BYTES + self.checkpoint_pages * (
                    page_size + _WAL_FRAME_HEADER_BYTES
                )
                conn.execute(f"PRAGMA journal_size_limit={wal_limit}")
            except sqlite3.OperationalError as exc:
                conn.close()
                if busy_timeout_ms == 0 and _is_busy(exc):
                    raise _Busy from None
                raise
            self._conn = conn
            self._busy_timeout_set = busy_timeout_ms
            self._wal_limit = wal_limit
        if self._busy_timeout_set != busy_timeout_ms:
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self._busy_timeout_set = busy_timeout_ms
        return self._conn

    def _commit(self, batch: list[_Pending], *, wait: bool) -> list[Any] | None:
        """Run `batch` in one transaction. None: it failed inline and must be retried one by one
        on the thread. Raises `_Busy` when not waiting and the write lock is taken."""
        conn = self._connection(self.busy_timeout_ms if wait else 0)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not wait and _is_busy(exc):
                raise _Busy from None
            return [_Failure(exc)] * len(batch)
        try:
            outcomes = [write(conn) for write, _ in batch]
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(batch) == 1:
                return [_Failure(exc)]
            if not wait:
                return None  # isolate the bad write on the thread, where waiting is allowed
            return [self._commit_one(write) for write, _ in batch]
        self.batches += 1
        self.writes += len(batch)
        return outcomes

    def _commit_one(self, write: Write) -> Any:
        conn = self._connection(self.busy_timeout_ms)
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcome = write(conn)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return _Failure(exc)
        self.batches += 1
        self.writes += 1
        return outcome

    def _commit_waiting(self, batch: list[_Pending]) -> list[Any]:
        outcomes = self._commit(batch, wait=True)
        assert outcomes is not None
        return outcomes


class _Failure:
    """An exception travelling from the batch to its write's future."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)
