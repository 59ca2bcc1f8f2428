"""Helpers for workflow tests: write YAML into a gateway's workflow directory and run it."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

from hearth.client import GatewayClient
from hearth.protocol.messages.workflows import (
    WorkflowExecutionGet,
    WorkflowExecutionResult,
    WorkflowListResult,
    WorkflowReload,
    WorkflowStatus,
    WorkflowTrigger,
    WorkflowTriggered,
)

TERMINAL = {"completed", "failed", "cancelled"}


def write_workflow(data_dir: Path, workflow_id: str, yaml_text: str) -> Path:
    path = data_dir / "workflows" / f"{workflow_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(yaml_text))
    return path


async def reload(client: GatewayClient) -> WorkflowListResult:
    return await client.request(WorkflowReload(id=client.next_id()), WorkflowListResult)


async def trigger(
    client: GatewayClient, workflow_id: str, input: dict[str, Any] | None = None
) -> str:
    reply = await client.request(
        WorkflowTrigger(id=client.next_id(), workflow_id=workflow_id, input=input),
        WorkflowTriggered,
    )
    return reply.execution_id


async def execution(client: GatewayClient, execution_id: str) -> WorkflowExecutionResult:
    return await client.request(
        WorkflowExecutionGet(id=client.next_id(), execution_id=execution_id),
        WorkflowExecutionResult,
    )


async def wait_status(
    client: GatewayClient, execution_id: str, statuses: set[str], timeout_s: float = 30
) -> WorkflowExecutionResult:
    """Poll the execution until it reaches one of `statuses` (events may have been missed)."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = await execution(client, execution_id)
            if result.execution.status in statuses:
                return result
            await asyncio.sleep(0.05)


async def wait_event(
    client: GatewayClient, execution_id: str, status: str, timeout_s: float = 30
) -> WorkflowStatus:
    async with asyncio.timeout(timeout_s):
        while True:
            event = await client.next_event("workflow.status", timeout_s)
            assert isinstance(event, WorkflowStatus)
            if event.execution_id == execution_id and event.status == status:
                return event
