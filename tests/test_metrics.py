"""`GET /metrics`: off by default, loopback or bearer token, Prometheus text with our names."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hearth.client import GatewayClient
from tests.support.databases import sqlite_url
from tests.support.gateway import in_process_gateway
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
