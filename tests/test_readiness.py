"""`GET /readyz`: ready only while the database, the loops and the event bus all work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from hearth.gateway.readiness import loop_check
from tests.support.databases import drop_database
from tests.support.gateway import in_process_gateway


async def readyz(url: str) -> tuple[int, dict[str, Any]]:
    """Probes carry no token: a supervisor or load balancer has none."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/readyz")
    return response.status_code, response.json()


async def until_not_ready(url: str, check: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            status, body = await readyz(url)
            if status == 503 and check in body["failing"]:
                return body
            await asyncio.sleep(0.1)


async def test_ready_then_not_ready_when_the_scheduler_stalls(
    data_dir: Path, database_url: str
) -> None:
    async with in_process_gateway(
        data_dir,
        database_url,
        schedules={"max_sleep_s": 0.2},
        workflows={"recovery_interval_s": 0.2},
    ) as gateway:
        async with asyncio.timeout(30):
            while (await readyz(gateway.url))[0] != 200:
                await asyncio.sleep(0.1)
        status, body = await readyz(gateway.url)
        assert status == 200
        expected = {"database", "migrations", "scheduler", "workflowRecovery"}
        if database_url.startswith("postgresql"):
            expected.add("eventBus")
        assert body == {"status": "ready", "checks": dict.fromkeys(expected, "ok")}

        await gateway.hearth.scheduler.stop()
        body = await until_not_ready(gateway.url, "scheduler")
        assert body["status"] == "not ready"
        assert body["failing"]["scheduler"].startswith("last pass")
        assert "expected every 0.2 s" in body["failing"]["scheduler"]
        assert body["checks"]["database"] == "ok"
        text = str(body)
        assert gateway.token not in text
        assert database_url not in text


@pytest.mark.postgres
async def test_not_ready_when_postgresql_is_gone(data_dir: Path, postgres_url: str) -> None:
    async with in_process_gateway(data_dir, postgres_url) as gateway:
        status, _ = await readyz(gateway.url)
        assert status == 200
        await drop_database(postgres_url)
        body = await until_not_ready(gateway.url, "database")
        assert body["failing"]["database"] == "does not answer"
        assert "migrations" not in body["checks"]


def test_a_loop_is_stalled_only_after_three_intervals() -> None:
    assert loop_check(None, started=100.0, interval_s=5.0, now=110.0) == "ok"
    assert loop_check(None, started=100.0, interval_s=5.0, now=117.0).startswith(
        "no pass completed in the 17 s since start"
    )
    assert loop_check(150.0, started=100.0, interval_s=5.0, now=160.0) == "ok"
    assert loop_check(150.0, started=100.0, interval_s=5.0, now=170.0) == (
        "last pass 20 s ago (expected every 5 s)"
    )
