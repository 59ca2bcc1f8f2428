"""Fresh databases for tests: a SQLite file per test, or a throwaway PostgreSQL database.

PostgreSQL databases are created on the server named by HEARTH_TEST_DATABASE_URL and dropped
afterwards, so runs (and tests) never see each other's data.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

PG_ENV = "HEARTH_TEST_DATABASE_URL"


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """Create `hearth_t_<random>` and yield its SQLAlchemy URL; drop it on exit."""
    base = pg_base_url()
    assert base, f"{PG_ENV} is not set"
    name = f"hearth_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(_asyncpg_dsn(base))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(base))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'hearth.db'}"


async def drop_database(url: str) -> None:
    """Drop a PostgreSQL database now, disconnecting its users (to test outages)."""
    base = pg_base_url()
    assert base
    name = make_url(url).database
    admin = await asyncpg.connect(_asyncpg_dsn(base))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
