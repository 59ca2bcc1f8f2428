"""Executions can be named by a unique prefix of their id, as people copy them from tables.

The gateway resolves the prefix (so every client gets it): `workflow.execution.get`,
`workflow.approval` and `workflow.cancel` accept one; an unknown or ambiguous prefix is a clear
`EXECUTION_NOT_FOUND`.
"""

from __future__ import annotations

import pytest

from hearth.client import GatewayClient, GatewayError
from hearth.protocol.messages.workflows import (
    WorkflowApproval,
    WorkflowApprovalResolved,
    WorkflowCancel,
    WorkflowCancelled,
)
from tests.support.gateway import RunningGateway
from tests.support.workflows import execution, reload, trigger, wait_status, write_workflow

GATED = """
    name: Gated
    steps:
      - id: ask
        action: noop
        approval_required: true
"""


def _unique_prefix(target: str, others: list[str]) -> str:
    for n in range(1, len(target) + 1):
        if not any(o.startswith(target[:n]) for o in others):
            return target[:n]
    raise AssertionError("ids are equal")


async def _not_found(client: GatewayClient, execution_id: str) -> str:
    with pytest.raises(GatewayError) as info:
        await execution(client, execution_id)
    assert info.value.code == "EXECUTION_NOT_FOUND"
    return info.value.message


async def test_prefixes_name_one_execution(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "gated", GATED)
    client = await gateway.client()
    await reload(client)
    first = await trigger(client, "gated")
    second = await trigger(client, "gated")
    for execution_id in (first, second):
        await wait_status(client, execution_id, {"paused"})
    short_first = _unique_prefix(first, [second])
    short_second = _unique_prefix(second, [first])

    assert (await execution(client, short_first)).execution.id == first
    approved = await client.request(
        WorkflowApproval(id="a", execution_id=short_first, step_id="ask", approved=True),
        WorkflowApprovalResolved,
    )
    assert approved.execution_id == first
    await wait_status(client, first, {"completed"})
    cancelled = await client.request(
        WorkflowCancel(id="c", execution_id=short_second), WorkflowCancelled
    )
    assert (cancelled.execution_id, cancelled.status) == (second, "cancelled")

    # Ids start with their creation time in milliseconds: two made together share a prefix.
    common = next(first[:n] for n in range(len(first), -1, -1) if second.startswith(first[:n]))
    assert len(common) >= 6
    message = await _not_found(client, common)
    assert f"{common!r} is the start of more than one execution id" in message
    assert first in message
    assert second in message
    assert await _not_found(client, "zzzz") == "no execution 'zzzz'"
    # LIKE wildcards in what a person typed are plain characters.
    assert await _not_found(client, "%") == "no execution '%'"
    assert await _not_found(client, "_") == "no execution '_'"
