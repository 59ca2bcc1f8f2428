"""Poison executions and retry backoff: what the engine does when a step keeps failing."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from hearth.client import GatewayClient
from hearth.store import Database
from hearth.workflows.definition import DefinitionError, RetryPolicy, StepDef
from tests.support.gateway import in_process_gateway, start_gateway_process
from tests.support.workflows import TERMINAL, reload, trigger, wait_status, write_workflow

POISON = """
    name: Poison
    steps:
      - {id: before, action: noop}
      - {id: bad, action: noop}
      - {id: after, action: noop}
"""
REJECTED = "rejected by the test database"


async def reject_results_of(database_url: str, step_id: str) -> None:
    """Make the real database refuse `step_id`'s successful journal row, the way PostgreSQL's
    JSON refuses a NaN in a tool's output: the write fails after the step did its work.

    Installed before the gateway starts (the schema is migrated here first)."""
    db = Database.from_url(database_url)
    try:
        await db.upgrade()
    finally:
        await db.dispose()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        with sqlite3.connect(url.database) as conn:
            conn.execute(
                f"CREATE TRIGGER poison BEFORE INSERT ON step_runs "
                f"WHEN NEW.step_id = '{step_id}' AND NEW.status = 'success' "
                f"BEGIN SELECT RAISE(ABORT, '{REJECTED}'); END"
            )
        return
    conn = await asyncpg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await conn.execute(
            f"""
            CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.step_id = '{step_id}' AND NEW.status = 'success' THEN
                    RAISE EXCEPTION '{REJECTED}';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER poison BEFORE INSERT ON step_runs
                FOR EACH ROW EXECUTE FUNCTION poison();
            """
        )
    finally:
        await conn.close()


async def test_a_step_that_keeps_crashing_fails_the_execution(
    data_dir: Path, database_url: str
) -> None:
    write_workflow(data_dir, "poison", POISON)
    await reject_results_of(database_url, "bad")
    async with in_process_gateway(
        data_dir, database_url, workflows={"recovery_interval_s": 0.2}
    ) as gateway:
        client = await gateway.client()
        await reload(client)
        execution_id = await trigger(client, "poison")
        done = await wait_status(client, execution_id, TERMINAL, timeout_s=60)
    assert done.execution.status == "failed"
    error = done.execution.error or ""
    assert error.startswith("crashed 3 times at step 'bad': "), error
    assert REJECTED in error
    assert [(s.step_id, s.status) for s in done.execution.steps] == [
        ("before", "success"),
        ("bad", "failure"),
    ]
    assert done.execution.steps[-1].error == error


async def test_the_crash_limit_is_a_setting(data_dir: Path) -> None:
    write_workflow(data_dir, "poison", POISON)
    await reject_results_of(f"sqlite+aiosqlite:///{data_dir / 'hearth.db'}", "bad")
    async with in_process_gateway(
        data_dir, workflows={"recovery_interval_s": 0.2, "crash_limit": 1}
    ) as gateway:
        client = await gateway.client()
        await reload(client)
        execution_id = await trigger(client, "poison")
        done = await wait_status(client, execution_id, TERMINAL, timeout_s=60)
    assert (done.execution.error or "").startswith("crashed 1 times at step 'bad': ")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_retry_backoff_survives_sigkill(data_dir: Path) -> None:
    """The next attempt's time is stored: a restart waits for it instead of retrying at once."""
    write_workflow(
        data_dir,
        "flaky",
        f"""
        name: Flaky
        steps:
          - id: call
            action: tool
            tool: http.request
            args: {{url: "http://127.0.0.1:{_closed_port()}/down", timeout: 5}}
            retry: {{attempts: 2, backoff: 10s, jitter: 0}}
        """,
    )
    # A closed loopback port: allowed, so the step fails by a refused connection, not policy.
    (data_dir / "config.toml").write_text('[tools.http]\nallow = ["127.0.0.1"]\n')
    first = start_gateway_process(data_dir)
    try:
        client = GatewayClient(first.url, first.token)
        await client.connect()
        execution_id = await trigger(client, "flaky")
        async with asyncio.timeout(30):
            while True:
                seen = await wait_status(client, execution_id, {"running"} | TERMINAL)
                if seen.execution.steps:
                    break
                await asyncio.sleep(0.02)
        await client.close()
    finally:
        first.kill()
    second = start_gateway_process(data_dir)
    try:
        client = GatewayClient(second.url, second.token)
        await client.connect()
        done = await wait_status(client, execution_id, TERMINAL, timeout_s=60)
        await client.close()
    finally:
        second.stop()
    assert done.execution.status == "failed"
    one, two = done.execution.steps
    assert (one.attempt, two.attempt) == (1, 2)
    assert one.finished_at is not None
    assert two.started_at - one.finished_at >= timedelta(seconds=10)  # never early


def test_retry_delays_double_up_to_max_delay_with_jitter_below() -> None:
    policy = RetryPolicy(attempts=50, backoff="1s", max_delay="1m", jitter=0.5)
    for attempt, full in ((1, 1), (2, 2), (3, 4), (7, 60), (49, 60)):
        delays = [policy.delay(attempt).total_seconds() for _ in range(200)]
        assert all(full * 0.5 <= d <= full for d in delays), (attempt, min(delays), max(delays))
        assert len(set(delays)) > 1  # spread, not one instant for everyone
    default = RetryPolicy(attempts=100, backoff="10s")
    assert default.delay(99) <= timedelta(minutes=5)
    assert RetryPolicy(jitter=0).delay(1) == timedelta(seconds=1)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"id": "s", "action": "tool", "tool": "notify", "retry": {"max_delay": "0s"}},
            "max_delay must be longer than zero",
        ),
        (
            {"id": "s", "action": "model", "prompt": "hi", "on_interrupt": "retry"},
            "'on_interrupt' is not used by a 'model' step",
        ),
    ],
)
def test_retry_and_interrupt_options_are_checked(step: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        StepDef.model_validate(step)
    assert isinstance(raised.value.errors()[0]["ctx"]["error"], DefinitionError)  # type: ignore[attr-defined]
