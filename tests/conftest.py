"""Shared fixtures: fresh databases on both backends and real gateways on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.databases import PG_ENV, fresh_postgres, pg_base_url, sqlite_url
from tests.support.gateway import RunningGateway, in_process_gateway

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No HEARTH_* variable from the developer's shell may leak into a test."""
    for name in list(os.environ):
        if name.startswith("HEARTH_") and name != PG_ENV:
            monkeypatch.delenv(name)
    return


def _require_postgres() -> None:
    if not pg_base_url():
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (CI sets it; e.g. "
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    _require_postgres()
    async with fresh_postgres() as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    _require_postgres()
    async with fresh_postgres() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def gateway(data_dir: Path, database_url: str) -> AsyncIterator[RunningGateway]:
    """A real gateway on a free loopback port, on each backend."""
    async with in_process_gateway(data_dir, database_url) as running:
        yield running


@pytest.fixture
async def sqlite_gateway(data_dir: Path) -> AsyncIterator[RunningGateway]:
    """A real gateway on SQLite only, for tests about the connection rather than storage."""
    async with in_process_gateway(data_dir) as running:
        yield running
