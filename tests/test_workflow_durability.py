"""Durability by killing: the gateway process is SIGKILLed and started again."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.workflows import TERMINAL, execution, trigger, wait_status, write_workflow

GATED_APPEND = """
    name: Gated append
    steps:
      - id: gate
        action: tool
        tool: file.write
        approval_required: true
        args: {path: ledger.txt, content: "paid ", mode: append}
      - id: done
        action: noop
"""


async def connect(gateway: GatewayProcess) -> GatewayClient:
    client = GatewayClient(gateway.url, gateway.token)
    await client.connect()
    return client


async def test_paused_approval_survives_sigkill_and_runs_once(data_dir: Path) -> None:
    write_workflow(data_dir, "pay", GATED_APPEND)
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        execution_id = await trigger(client, "pay")
        await wait_status(client, execution_id, {"paused"})
        await client.close()
    finally:
        first.kill()
    assert first.process.returncode == -9

    second = start_gateway_process(data_dir)
    try:
        phone = await connect(second)
        still = await execution(phone, execution_id)
        assert (still.execution.status, still.execution.waiting_for) == ("paused", "approval")
        await phone.request(
            WorkflowApproval(id="a", execution_id=execution_id, step_id="gate", approved=True),
            WorkflowApprovalResolved,
        )
        done = await wait_status(phone, execution_id, TERMINAL)
        await phone.close()
    finally:
        second.stop()
    assert done.execution.status == "completed"
    assert [s.step_id for s in done.execution.steps] == ["gate", "done"]
    assert (data_dir / "workspace" / "ledger.txt").read_text() == "paid "


async def test_wait_survives_sigkill_and_fires_on_time(data_dir: Path) -> None:
    write_workflow(
        data_dir,
        "later",
        """
        name: Later
        steps:
          - {id: nap, action: wait, duration: 3s}
          - {id: after, action: noop}
        """,
    )
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        execution_id = await trigger(client, "later")
        paused = await wait_status(client, execution_id, {"paused"})
        assert paused.execution.waiting_for == "timer"
        await client.close()
    finally:
        first.kill()
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        done = await wait_status(client, execution_id, TERMINAL, timeout_s=30)
        await client.close()
    finally:
        second.stop()
    assert done.execution.status == "completed"
    nap = done.execution.steps[0]
    due = datetime.fromisoformat(nap.output["waitedUntil"])
    assert nap.finished_at is not None
    assert nap.finished_at >= due  # never early
    assert (due - done.execution.started_at).total_seconds() == pytest.approx(3, abs=0.5)


async def test_step_interrupted_by_sigkill_runs_again_after_restart(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text("[tools.shell]\nenabled = true\n")
    write_workflow(
        data_dir,
        "slow",
        """
        name: Slow
        steps:
          - id: work
            action: tool
            tool: shell.run
            args: {command: "echo start >> runs.txt; sleep 2; echo end >> runs.txt"}
        """,
    )
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        execution_id = await trigger(client, "slow")
        await wait_status(client, execution_id, {"paused"})  # shell.run is always gated
        await client.request(
            WorkflowApproval(id="a", execution_id=execution_id, step_id="work", approved=True),
            WorkflowApprovalResolved,
        )
        runs = data_dir / "workspace" / "runs.txt"
        deadline = time.monotonic() + 20
        while not runs.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await client.close()
    finally:
        first.kill()
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        done = await wait_status(client, execution_id, TERMINAL, timeout_s=30)
        await client.close()
    finally:
        second.stop()
    assert done.execution.status == "completed"
    # At-least-once: the interrupted run started, the rerun started and completed. (The first
    # shell may still finish on its own: a SIGKILLed gateway cannot stop its children.)
    assert runs.read_text().split().count("start") == 2
    assert [(s.step_id, s.status) for s in done.execution.steps] == [("work", "success")]
