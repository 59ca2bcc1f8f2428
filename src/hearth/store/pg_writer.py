"""Group-committed writes to PostgreSQL over one asyncpg connection of their own.

Why not the async engine: a workflow step sent through SQLAlchemy was BEGIN, a fenced UPDATE, a
journal INSERT and COMMIT, four round trips plus SQLAlchemy's statement handling each time:
2.7-4 ms of CPU per step, 45x the SQLite path, and no faster than DBOS. PostgreSQL commits a
small transaction in well under a millisecond; the time went to the client.

`PgWriter` therefore works the way `sqlite_writer.SqliteWriter` does, adapted to a server:

- Every write submitted during one event-loop iteration joins one batch, committed in one
  transaction: a runner still waits for its own transition to be durable before it goes on, but
  runners that are ready together share a commit.
- Writes of the same shape are *grouped*: a `Grouped` statement takes one array per column
  (`unnest`), so eight executions taking a step together are one statement, one round trip and
  one commit, not eight. A batch of one statement needs no BEGIN/COMMIT at all (a single
  statement is its own transaction). The statement returns the index of each write that
  applied, which is how a fenced write (`... AND owner_node = $node`) tells its caller it lost.
- Statements are prepared once per connection (asyncpg's statement cache) and run on asyncpg
  directly: no SQLAlchemy compilation or result processing on the hot path.
- One batch is in flight at a time; whatever is submitted meanwhile forms the next batch.
- If a batch fails, every write in it is retried on its own, so one bad write fails alone. A
  broken connection is dropped and opened again for the next batch.

Anything else (`run(fn)`) is a function given the connection inside the batch's transaction,
for writes rare enough not to need grouping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("hearth.store.pg_writer")

T = TypeVar("T")
Op = Callable[["asyncpg.Connection[Any]"], Awaitable[Any]]


class Grouped:
    """A statement over arrays: `$1` is the writes' indexes, `$2..` one array per column.

    The SQL must select the index (`i`) of every write that applied when `fenced`; a write's
    result is then whether it applied. Unfenced statements resolve to None.
    """

    __slots__ = ("fenced", "sql", "width")

    def __init__(self, sql: str, width: int, *, fenced: bool) -> None:
        self.sql = sql
        self.width = width
        self.fenced = fenced


class _Pending:
    __slots__ = ("future", "op", "row", "statement")

    def __init__(
        self,
        future: asyncio.Future[Any],
        statement: Grouped | None,
        row: Sequence[Any] | None,
        op: Op | None,
    ) -> None:
        self.future = future
        self.statement = statement
        self.row = row
        self.op = op


class PgWriter:
    """One writing asyncpg connection with group commit (see the module docstring)."""

    def __init__(self, dsn: str, *, command_timeout_s: float = 60.0) -> None:
        self._dsn = dsn
        self._command_timeout_s = command_timeout_s
        self._conn: asyncpg.Connection[Any] | None = None
        self._pending: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.batches = 0  # commits made; with `writes` this shows how much grouping happened
        self.writes = 0

    # -- public -------------------------------------------------------------------------------

    def grouped(self, statement: Grouped, row: Sequence[Any]) -> asyncio.Future[Any]:
        """Queue one row of `statement` for the next batch; resolves once committed."""
        return self._submit(_Pending(self._future(), statement, row, None))

    def submit(self, op: Op) -> asyncio.Future[Any]:
        """Queue `op` (run inside the batch's transaction) for the next batch."""
        return self._submit(_Pending(self._future(), None, None, op))

    async def run(self, op: Callable[[asyncpg.Connection[Any]], Awaitable[T]]) -> T:
        result: T = await self.submit(op)
        return result

    async def settle(self) -> None:
        """Wait until every write queued so far is committed (or failed)."""
        while not self._idle.is_set():
            await self._idle.wait()

    async def close(self) -> None:
        """Commit what is queued, then close the connection (a later write opens a new one,
        as the engine's pool does after `dispose`)."""
        await self.settle()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except Exception:  # a connection that cannot close cleanly is gone anyway
                conn.terminate()

    # -- batching -----------------------------------------------------------------------------

    @staticmethod
    def _future() -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    def _submit(self, pending: _Pending) -> asyncio.Future[Any]:
        self._pending.append(pending)
        self._idle.clear()
        if self._task is None:
            # The task first runs on the next loop iteration: what else is submitted during
            # this one joins the batch.
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="hearth-pg-writer"
            )
        return pending.future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._commit(batch)
                except asyncio.CancelledError:
                    _fail(batch, asyncio.CancelledError())
                    raise
                # One loop iteration for the writers this batch just released: their next
                # writes join the next batch instead of leaving it to those that queued while
                # this one was in flight (otherwise runners settle into two half batches).
                await asyncio.sleep(0)
        finally:
            self._task = None
            if self._pending:  # cancelled with writes queued behind the batch
                pending, self._pending = self._pending, []
                _fail(pending, RuntimeError("the PostgreSQL writer stopped"))
            self._idle.set()

    async def _connection(self) -> asyncpg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.is_closed():
            import asyncpg  # an optional dependency (the postgres extra)

            conn = await asyncpg.connect(self._dsn, command_timeout=self._command_timeout_s)
            self._conn = conn
        return conn

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            conn = await self._connection()
            outcomes = await self._run(conn, batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._drop_if_broken(exc)
            if len(batch) == 1:
                _fail(batch, exc)
                return
            log.debug("batch of %d writes failed (%r); retrying them one by one", len(batch), exc)
            for pending in batch:
                await self._commit([pending])
            return
        self.batches += 1
        self.writes += len(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():
                pending.future.set_result(outcome)

    async def _run(self, conn: asyncpg.Connection[Any], batch: list[_Pending]) -> list[Any]:
        groups: dict[Grouped, list[int]] = {}
        ops: list[int] = []
        for index, pending in enumerate(batch):
            if pending.statement is not None:
                groups.setdefault(pending.statement, []).append(index)
            else:
                ops.append(index)
        outcomes: list[Any] = [None] * len(batch)
        if not ops and len(groups) == 1:  # one statement: its own transaction, one round trip
            await self._run_groups(conn, batch, groups, outcomes)
            return outcomes
        async with conn.transaction():
            await self._run_groups(conn, batch, groups, outcomes)
            for index in ops:
                op = batch[index].op
                assert op is not None
                outcomes[index] = await op(conn)
        return outcomes

    @staticmethod
    async def _run_groups(
        conn: asyncpg.Connection[Any],
        batch: list[_Pending],
        groups: dict[Grouped, list[int]],
        outcomes: list[Any],
    ) -> None:
        for statement, indexes in groups.items():
            rows = [batch[index].row for index in indexes]
            columns: list[list[Any]] = [[] for _ in range(statement.width)]
            for row in rows:
                assert row is not None
                assert len(row) == statement.width
                for column, value in zip(columns, row, strict=True):
                    column.append(value)
            found = await conn.fetch(statement.sql, list(range(len(indexes))), *columns)
            if statement.fenced:
                applied = {record[0] for record in found}
                for position, index in enumerate(indexes):
                    outcomes[index] = position in applied

    def _drop_if_broken(self, exc: Exception) -> None:
        """Forget the connection unless the server itself refused the statement.

        A server error (a constraint, a serialization failure) leaves the connection usable. Any
        other failure may leave it half-way through the protocol: a connection terminated
        while a statement was being prepared is not yet `is_closed()`, and reusing it fails
        every later batch with "another operation is in progress".
        """
        conn = self._conn
        if conn is None:
            return
        import asyncpg

        if conn.is_closed() or not isinstance(exc, asyncpg.PostgresError):
            self._conn = None
            conn.terminate()


def _fail(batch: list[_Pending], error: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            if isinstance(error, asyncio.CancelledError):
                pending.future.cancel()
            else:
                pending.future.set_exception(error)


def asyncpg_dsn(url: str) -> str:
    """The plain `postgresql://` DSN asyncpg takes, from SQLAlchemy's `postgresql+asyncpg://`."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
