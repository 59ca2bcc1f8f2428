"""Every approval answer records who answered, through which channel, from where, and when.

One workflow approval is answered by a WebSocket program, another by `hearth workflow
approve` (the CLI), both against a real gateway; the history (protocol and `hearth approvals
--history`) must tell them apart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from tests.support.cli import run_cli
from tests.support.gateway import in_process_gateway
from tests.support.workflows import reload, trigger, wait_status, write_workflow

GATED = """
    name: Gated
    steps:
      - id: ask
        action: noop
        approval_required: true
        approval_prompt: "Go ahead?"
"""


async def test_answers_record_client_channel_address_and_time(
    data_dir: Path, database_url: str
) -> None:
    write_workflow(data_dir, "gated", GATED)
    async with in_process_gateway(data_dir, database_url) as gw:
        client = await gw.client(client_name="audit-test")
        await reload(client)
        by_ws = await trigger(client, "gated")
        await wait_status(client, by_ws, {"paused"})
        by_cli = await trigger(client, "gated")
        await wait_status(client, by_cli, {"paused"})
        pending = await client.request(ApprovalList(id="p"), ApprovalListResult)
        await client.request(
            WorkflowApproval(id="a", execution_id=by_ws, step_id="ask", approved=True),
            WorkflowApprovalResolved,
        )
        done = await asyncio.to_thread(
            run_cli, ["workflow", "deny", by_cli, "ask", "--comment", "not now"], data_dir
        )
        assert done.returncode == 0, done.stderr
        history = await client.request(ApprovalList(id="h", history=True), ApprovalListResult)
        shown = await asyncio.to_thread(run_cli, ["approvals", "--history"], data_dir, "200")
    # Both lists name each approval's workflow (looked up for all of them in one query).
    assert {(a.execution_id, a.workflow_id) for a in pending.approvals} == {
        (by_ws, "gated"),
        (by_cli, "gated"),
    }
    assert {a.workflow_id for a in history.approvals} == {"gated"}
    by_execution = {a.execution_id: a for a in history.approvals}
    ws_answer, cli_answer = by_execution[by_ws], by_execution[by_cli]
    assert ws_answer.status == "approved"
    assert ws_answer.answered_by is not None
    assert (ws_answer.answered_by.client, ws_answer.answered_by.channel) == ("audit-test", "ws")
    assert ws_answer.answered_by.address == "127.0.0.1"
    assert ws_answer.resolved_at is not None
    assert cli_answer.status == "denied"
    assert cli_answer.comment == "not now"
    assert cli_answer.answered_by is not None
    assert (cli_answer.answered_by.client, cli_answer.answered_by.channel) == ("hearth-cli", "cli")
    assert cli_answer.answered_by.address == "127.0.0.1"
    assert history.approvals[0].execution_id == by_cli  # newest answer first
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any("denied" in line and "hearth-cli" in line and " cli " in line for line in lines)
    assert any("approved" in line and "audit-test" in line and " ws " in line for line in lines)
    assert "127.0.0.1" in shown.stdout
