"""`GET /metrics`: off by default, loopback or bearer token, Prometheus text with our names."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hearth.client import GatewayClient
from hearth.client.errors import GatewayError
from tests.support.databases import sqlite_url
from tests.support.gateway import in_process_gateway
from tests.support.schedules import create as create_schedule
from tests.support.schedules import wait_runs
from tests.support.workflows import trigger, wait_status, write_workflow

GATED = """
name: Gated
steps:
  - {id: gate, action: noop, approval_required: true}
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_off_by_default(data_dir: Path) -> None:
    async with (
        in_process_gateway(data_dir, sqlite_url(data_dir)) as gateway,
        httpx.AsyncClient() as http,
    ):
        response = await http.get(f"{gateway.url}/metrics")
    assert response.status_code == 404
    assert "[metrics] enabled = true" in response.text


async def test_loopback_scrape_counts_connections_and_pending_approvals(data_dir: Path) -> None:
    write_workflow(data_dir, "gated", GATED)
    async with (
        in_process_gateway(data_dir, sqlite_url(data_dir), metrics={"enabled": True}) as gateway,
        GatewayClient(gateway.url, gateway.token, client_name="phone") as client,
    ):
        execution_id = await trigger(client, "gated")
        await wait_status(client, execution_id, {"paused"})
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{gateway.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("hearth_connections", (("client", "phone"),))] == 1
    assert found[("hearth_approvals_pending", ())] == 1
    assert found[("hearth_executions_running", ())] == 1
    assert gateway.token not in response.text


async def test_a_configured_token_is_required(data_dir: Path) -> None:
    async with (
        in_process_gateway(
            data_dir, sqlite_url(data_dir), metrics={"enabled": True, "token": "scrape-secret"}
        ) as gateway,
        httpx.AsyncClient() as http,
    ):
        missing = await http.get(f"{gateway.url}/metrics")
        wrong = await http.get(f"{gateway.url}/metrics", headers={"Authorization": "Bearer nope"})
        right = await http.get(
            f"{gateway.url}/metrics", headers={"Authorization": "Bearer scrape-secret"}
        )
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "hearth_frames_total" in right.text


async def test_requests_steps_executions_errors_and_ticks_are_counted(
    data_dir: Path, database_url: str
) -> None:
    write_workflow(
        data_dir,
        "two",
        "name: Two\nsteps:\n  - {id: a, action: noop}\n  - {id: b, action: wait, duration: 10ms}\n",
    )
    async with (
        in_process_gateway(data_dir, database_url, metrics={"enabled": True}) as gateway,
        GatewayClient(gateway.url, gateway.token) as client,
    ):
        execution_id = await trigger(client, "two")
        await wait_status(client, execution_id, {"completed"})
        with pytest.raises(GatewayError):
            await trigger(client, "no-such-workflow")
        schedule_id = await create_schedule(
            client, name="tick", every="1s", workflow_id="two", max_runs=1
        )
        await wait_runs(client, schedule_id, 1, status={"ok"})
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{gateway.url}/metrics")).text
    found = samples(text)
    assert found[("hearth_executions_total", (("status", "completed"), ("workflow", "two")))] == 2
    assert found[("hearth_step_seconds_count", (("action", "noop"),))] == 2
    assert found[("hearth_step_seconds_count", (("action", "wait"),))] == 2
    assert found[("hearth_request_seconds_count", (("type", "workflow.trigger"),))] == 2
    assert found[("hearth_errors_total", (("code", "WORKFLOW_NOT_FOUND"),))] == 1
    assert found[("hearth_schedule_ticks_total", (("status", "ok"),))] == 1
    assert found[("hearth_schedule_lateness_seconds_count", ())] == 1
    assert found[("hearth_frames_total", (("direction", "in"),))] >= 5
    assert found[("hearth_frames_total", (("direction", "out"),))] >= 5
