"""The `Database` handle every repository is built on."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hearth.store import migrate
from hearth.store.engine import WRITE_OPTION, Backend, backend_of, create_engine
from hearth.store.pg_writer import PgWriter, asyncpg_dsn
from hearth.store.sqlite_writer import SqliteWriter


class Database:
    """One engine plus what the gateway needs to know about it.

    On a SQLite file, `writer` is the group-committing connection that hot transitions use
    (see `sqlite_writer`); on PostgreSQL `pg_writer` is its counterpart (see `pg_writer`).
    Everything else goes through the async engine.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        backend: Backend,
        writer: SqliteWriter | None = None,
        pg_writer: PgWriter | None = None,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.writer = writer
        self.pg_writer = pg_writer
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        sqlite_synchronous: str = "NORMAL",
        busy_timeout_ms: int = 5000,
        pool_size: int = 5,
    ) -> Database:
        engine = create_engine(
            url,
            sqlite_synchronous=sqlite_synchronous,
            busy_timeout_ms=busy_timeout_ms,
            pool_size=pool_size,
        )
        backend = backend_of(url)
        writer: SqliteWriter | None = None
        pg_writer: PgWriter | None = None
        path = make_url(url).database
        if backend == "sqlite" and path and path != ":memory:" and not path.startswith("file:"):
            writer = SqliteWriter(
                path, synchronous=sqlite_synchronous, busy_timeout_ms=busy_timeout_ms
            )
        elif backend == "postgresql":
            pg_writer = PgWriter(asyncpg_dsn(url))  # connects on its first write
        return cls(engine, backend, writer, pg_writer)

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection inside a transaction that commits on success, rolls back on error."""
        return self._write_engine.begin()

    def connect(self) -> AsyncConnection:
        return self.engine.connect()

    async def upgrade(self) -> str | None:
        return await migrate.upgrade(self.engine)

    async def ping(self, timeout_s: float = 2.0) -> bool:
        """True when the database answers a trivial query within the timeout."""
        try:
            async with asyncio.timeout(timeout_s), self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (TimeoutError, OSError, sa.exc.SQLAlchemyError):
            return False
        return True

    async def dispose(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        if self.pg_writer is not None:
            await self.pg_writer.close()
        await self.engine.dispose()
