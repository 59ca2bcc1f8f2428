"""Waits, approvals and the engine's own timers: each step waits its own time, and an approved
execution resumes at once, on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.workflows import WorkflowCancel, WorkflowCancelled
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.workflows import execution, reload, trigger, wait_status, write_workflow
from tests.test_workflow_engine import approve

WAIT_THEN_GATED_WAIT = """
    name: Two waits
    steps:
      - {id: w1, action: wait, duration: 1s}
      - {id: w2, action: wait, duration: 30s, approval_required: true}
      - {id: after, action: noop}
"""


async def test_a_wait_after_an_approval_waits_its_own_time(gateway: RunningGateway) -> None:
    """w1's wake-up time must not be taken for w2's once w2's gate is approved."""
    write_workflow(gateway.data_dir, "waits", WAIT_THEN_GATED_WAIT)
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "waits")
    async with asyncio.timeout(30):
        while True:
            gate = await wait_status(client, execution_id, {"paused"})
            if gate.execution.waiting_for == "approval":
                break
            await asyncio.sleep(0.05)
    assert gate.execution.current_step_id == "w2"
    await approve(client, execution_id, "w2")

    # After the approval, w2 starts its own 30 s wait: paused on its timer, not finished.
    async with asyncio.timeout(30):
        while True:
            now = await execution(client, execution_id)
            state = (now.execution.status, now.execution.waiting_for)
            if state != ("paused", "approval") and state != ("running", None):
                break
            await asyncio.sleep(0.05)
    assert state == ("paused", "timer"), [
        (s.step_id, s.status, s.output) for s in now.execution.steps
    ]
    assert [s.step_id for s in now.execution.steps] == ["w1"]
    cancelled = await client.request(
        WorkflowCancel(id=client.next_id(), execution_id=execution_id), WorkflowCancelled
    )
    assert cancelled.status == "cancelled"


async def test_an_approval_resumes_its_execution_at_once(data_dir: Path, database_url: str) -> None:
    """Answers that arrive while the runner that paused is still wrapping up must start a
    runner: with the recovery pass out of the picture, a missed one would never finish."""
    write_workflow(
        data_dir,
        "gated",
        """
        name: Gated
        steps:
          - {id: gate, action: noop, approval_required: true}
          - {id: after, action: noop}
        """,
    )
    async with in_process_gateway(
        data_dir, database_url, workflows={"recovery_interval_s": 3600}
    ) as gateway:
        client = await gateway.client()
        approver = await gateway.client()
        ids = set()
        for _ in range(40):
            ids.add(await trigger(client, "gated"))
        answered: set[str] = set()

        async def answer_everything() -> None:
            while answered != ids:
                pending = await approver.request(
                    ApprovalList(id=approver.next_id()), ApprovalListResult
                )
                for item in pending.approvals:
                    assert item.execution_id is not None
                    assert item.step_id is not None
                    if item.execution_id not in answered:
                        answered.add(item.execution_id)
                        await approve(approver, item.execution_id, item.step_id)

        answering = asyncio.create_task(answer_everything())
        try:
            for execution_id in ids:
                done = await wait_status(client, execution_id, {"completed"}, timeout_s=60)
                assert [s.step_id for s in done.execution.steps] == ["gate", "after"]
        finally:
            answering.cancel()
