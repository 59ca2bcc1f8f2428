"""Shared fixtures: fresh databases on both backends and real gateways on loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import PG_ENV, fresh_postgres, pg_base_url, sqlite_url
from tests.support.gateway import (
    RunningGateway,
    in_process_gateway,
    kill_leftover_gateways,
    started_gateways,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No HEARTH_* variable from the developer's shell may leak into a test, and the pointers
    gateways leave for other terminals (hearth.pointers) stay in the test's own directory."""
    for name in list(os.environ):
        if name.startswith("HEARTH_") and name != PG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("run")))
    return


@pytest.fixture(autouse=True)
def _no_gateway_outlives_its_test() -> Iterator[None]:
    # Gateways of module-scoped fixtures were started before this runs and are theirs to stop.
    before = started_gateways()
    yield
    kill_leftover_gateways(keep=before)


LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
MODEL_KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
)


def is_loopback_host(host: Any) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Fails any test that resolves a non-loopback host (a real model API, for instance).

    Every lookup goes through `socket.getaddrinfo` (asyncio's resolver too), so refusing
    there catches the OpenAI and Anthropic SDKs before a byte leaves the machine. Attempts are
    also recorded, so a refusal swallowed by library code still fails the test.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback_host(host):
            self.attempts.append(str(host))
            raise OSError(f"tests may not reach {host}: only loopback services are allowed")
        return self._real(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    monkeypatch.setattr(socket, "getaddrinfo", guard.getaddrinfo)
    for name in MODEL_KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield guard
    assert not guard.attempts, f"the test tried to reach the network: {guard.attempts}"


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
