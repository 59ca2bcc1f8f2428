"""Engine set-up for the two supported backends.

SQLite gets WAL (readers never block the writer), foreign keys (off by default in SQLite) and a
busy timeout (so a second process waits instead of failing at once). PostgreSQL gets a small pool;
several gateway processes share it, coordinating through row claims rather than locks in Python.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

Backend = Literal["sqlite", "postgresql"]
#: Execution option that marks a connection as a writer (see `_configure_sqlite`).
WRITE_OPTION = "hearth_write"


class DatabaseUrlError(ValueError):
    """The database URL names a backend Hearth does not support, or is malformed."""


def backend_of(url: str) -> Backend:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"database URL is malformed: {exc}") from None
    name = parsed.get_backend_name()
    if name == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            raise DatabaseUrlError("use sqlite+aiosqlite:///PATH for SQLite")
        return "sqlite"
    if name == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise DatabaseUrlError("use postgresql+asyncpg://USER@HOST/DB for PostgreSQL")
        if importlib.util.find_spec("asyncpg") is None:
            raise DatabaseUrlError(
                "PostgreSQL support is not installed: pip install 'hearthgate[postgres]'"
            )
        return "postgresql"
    raise DatabaseUrlError(f"unsupported database {name!r}: use SQLite or PostgreSQL")


def create_engine(
    url: str,
    *,
    sqlite_synchronous: str = "NORMAL",
    busy_timeout_ms: int = 5000,
    pool_size: int = 5,
) -> AsyncEngine:
    """An AsyncEngine configured for `url`'s backend."""
    backend = backend_of(url)
    if backend == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _configure_sqlite(engine, sqlite_synchronous, busy_timeout_ms)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: AsyncEngine, synchronous: str, busy_timeout_ms: int) -> None:
    if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"bad sqlite synchronous mode {synchronous!r}")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is disabled so that BEGIN is issued by
        # SQLAlchemy (below) and "BEGIN IMMEDIATE" can be used where a write follows a read.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers (Database.begin) take the write lock up front with IMMEDIATE, so two writers
        # queue on the busy timeout instead of one failing with "database is locked" when it
        # upgrades a read lock. Readers use a deferred BEGIN and never block anyone in WAL.
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
