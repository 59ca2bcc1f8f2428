"""Several gateway processes on one PostgreSQL: a dead node's execution is finished by another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from tests.support.gateway import in_process_gateway, start_gateway_process
from tests.support.workflows import TERMINAL, execution, trigger, wait_status, write_workflow

NODE_CONFIG = """
[workflows]
lease_s = 2
recovery_interval_s = 0.3

[tools.http]
allow = ["127.0.0.1"]  # the fake remote service listens on loopback
"""


@pytest.fixture
async def first_call_hangs() -> AsyncIterator[tuple[str, list[int]]]:
    """An HTTP server whose first request never gets an answer; later ones get 200."""
    hits: list[int] = []
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        hits.append(len(hits) + 1)
        if len(hits) == 1:
            await release.wait()
            writer.close()
            return
        body = b"done"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n"
            b"Connection: close\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/work", hits
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_other_node_finishes_a_dead_nodes_execution(
    tmp_path: Path, postgres_url: str, first_call_hangs: tuple[str, list[int]]
) -> None:
    url, hits = first_call_hangs
    workflow = f"""
        name: Remote work
        steps:
          - id: call
            action: tool
            tool: http.request
            args: {{method: POST, url: "{url}", timeout: 120}}
            on_interrupt: retry  # a POST would otherwise ask a person before running again
          - id: after
            action: noop
    """
    nodes = []
    for name in ("a", "b"):
        data_dir = tmp_path / name
        data_dir.mkdir()
        (data_dir / "config.toml").write_text(NODE_CONFIG)
        write_workflow(data_dir, "remote", workflow)
        nodes.append(start_gateway_process(data_dir, "--database-url", postgres_url))
    node_a, node_b = nodes
    try:
        client_a = GatewayClient(node_a.url, node_a.token)
        await client_a.connect()
        execution_id = await trigger(client_a, "remote")
        async with asyncio.timeout(20):
            while not hits:
                await asyncio.sleep(0.05)
        await client_a.close()
        node_a.kill()

        client_b = GatewayClient(node_b.url, node_b.token)
        await client_b.connect()
        done = await wait_status(client_b, execution_id, TERMINAL, timeout_s=60)
        detail = await execution(client_b, execution_id)
        await client_b.close()
    finally:
        for node in nodes:
            node.stop()
    assert done.execution.status == "completed", done.execution.error
    assert hits == [1, 2]  # the interrupted call, then the rerun on node b
    call = detail.execution.steps[0]
    assert (call.step_id, call.status, call.output["body"]) == ("call", "success", "done")  # type: ignore[index]


async def test_events_cross_nodes_through_postgres(tmp_path: Path, postgres_url: str) -> None:
    """A client on node A sees the status and approval request of an execution run on B."""
    dirs = []
    for name in ("a", "b"):
        data_dir = tmp_path / name
        data_dir.mkdir()
        write_workflow(
            data_dir,
            "gated",
            """
            name: Gated
            steps:
              - {id: gate, action: noop, approval_required: true}
            """,
        )
        dirs.append(data_dir)
    async with (
        in_process_gateway(dirs[0], postgres_url, node_id="node-a") as node_a,
        in_process_gateway(dirs[1], postgres_url, node_id="node-b") as node_b,
    ):
        watcher = await node_a.client()
        runner = await node_b.client()
        execution_id = await trigger(runner, "gated")
        request = await watcher.next_event("workflow.approval.request")
        assert request.execution_id == execution_id  # type: ignore[attr-defined]
        # Approved from node A: A resumes and finishes it; B's client sees it complete.
        await watcher.request(
            WorkflowApproval(id="a", execution_id=execution_id, step_id="gate", approved=True),
            WorkflowApprovalResolved,
        )
        done = await wait_status(runner, execution_id, TERMINAL)
        assert done.execution.status == "completed"
        async with asyncio.timeout(10):
            while True:
                event = await runner.next_event("workflow.status")
                if event.status == "completed":  # type: ignore[attr-defined]
                    break
