"""Storage on both backends: migrations, pragmas, the node registry, UTC timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hearth.store import Database, DatabaseUrlError, backend_of
from hearth.store.migrate import current_revision, head_revision
from hearth.store.nodes import NodeRecord, NodeRepository
from tests.support.databases import drop_database
from tests.support.gateway import in_process_gateway


async def test_upgrade_reaches_head_and_is_idempotent(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        assert await current_revision(db.engine) is None
        assert await db.upgrade() == head_revision()
        assert await db.upgrade() == head_revision()
        async with db.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "gateway_nodes" in tables
    finally:
        await db.dispose()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database.from_url(
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", sqlite_synchronous="FULL", busy_timeout_ms=1234
    )
    try:
        async with db.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert (mode, fks, sync, busy) == ("wal", 1, 2, 1234)
    finally:
        await db.dispose()


async def test_node_registry_round_trip_keeps_utc(database_url: str) -> None:
    db = Database.from_url(database_url)
    await db.upgrade()
    repo = NodeRepository(db)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        await repo.register(NodeRecord("n1", "host", 1, "http://x", "0", now, now))
        await repo.register(
            NodeRecord("old", "host", 2, "http://y", "0", now, now - timedelta(minutes=5))
        )
        live = await repo.live(now=now)
        assert [n.node_id for n in live] == ["n1"]
        assert live[0].seen_at == now
        assert live[0].seen_at.tzinfo is not None
        await repo.remove("n1")
        assert await repo.live(now=now) == []
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://u@h/db", "unsupported database"),
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("::::", "malformed"),
    ],
)
def test_bad_database_urls(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseUrlError, match=re.escape(fragment)):
        backend_of(url)


async def test_healthz_is_503_when_the_database_is_gone(data_dir: Path, postgres_url: str) -> None:
    async with in_process_gateway(data_dir, postgres_url) as gw:
        async with httpx.AsyncClient() as http:
            assert (await http.get(gw.url + "/healthz")).status_code == 200
            await drop_database(postgres_url)
            response = await http.get(gw.url + "/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
