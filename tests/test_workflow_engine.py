"""The workflow engine end to end: a real gateway, real clients, both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hearth.client import GatewayError
from hearth.protocol import ErrorCode
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.workflows import (
    WorkflowApproval,
    WorkflowApprovalRequest,
    WorkflowApprovalResolved,
    WorkflowCancel,
    WorkflowCancelled,
    WorkflowExecutionList,
    WorkflowExecutionListResult,
    WorkflowList,
    WorkflowListResult,
    WorkflowStatus,
)
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.workflows import (
    TERMINAL,
    execution,
    reload,
    trigger,
    wait_event,
    wait_status,
    write_workflow,
)

GATED = """
    name: Gated write
    inputs:
      who: {type: string, required: true}
    steps:
      - id: prepare
        action: noop
      - id: write
        action: tool
        tool: file.write
        description: Write the greeting
        approval_required: true
        approval_prompt: "Greet {{ input.who }}?"
        args: {path: greeting.txt, content: "hello {{ input.who }}\\n", mode: append}
      - id: after
        action: noop
"""


async def approve(
    client: object,
    execution_id: str,
    step_id: str,
    approved: bool = True,
    comment: str | None = None,
) -> WorkflowApprovalResolved:
    return await client.request(  # type: ignore[attr-defined, no-any-return]
        WorkflowApproval(
            id=client.next_id(),  # type: ignore[attr-defined]
            execution_id=execution_id,
            step_id=step_id,
            approved=approved,
            comment=comment,
        ),
        WorkflowApprovalResolved,
    )


async def test_gate_approved_from_another_connection(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "gated", GATED)
    alice = await gateway.client()
    phone = await gateway.client()
    await reload(alice)
    execution_id = await trigger(alice, "gated", {"who": "bob"})
    request = await phone.next_event("workflow.approval.request")
    assert isinstance(request, WorkflowApprovalRequest)
    assert request.execution_id == execution_id
    assert request.step_id == "write"
    assert request.step_description == "Write the greeting"
    assert request.args == {"path": "greeting.txt", "content": "hello bob\n", "mode": "append"}
    assert request.prompt == "Greet bob?"
    paused = await execution(alice, execution_id)
    assert (paused.execution.status, paused.execution.waiting_for) == ("paused", "approval")

    pending = await alice.request(ApprovalList(id="al"), ApprovalListResult)
    assert [(a.execution_id, a.step_id, a.kind) for a in pending.approvals] == [
        (execution_id, "write", "workflow")
    ]

    resolved = await approve(phone, execution_id, "write")
    assert resolved.approved
    with pytest.raises(GatewayError) as second:
        await approve(alice, execution_id, "write", approved=False)
    assert second.value.code == ErrorCode.NO_PENDING_APPROVAL

    done = await wait_status(alice, execution_id, TERMINAL)
    assert done.execution.status == "completed"
    assert [(s.step_id, s.status) for s in done.execution.steps] == [
        ("prepare", "success"),
        ("write", "success"),
        ("after", "success"),
    ]
    assert (gateway.data_dir / "workspace" / "greeting.txt").read_text() == "hello bob\n"
    assert (await alice.request(ApprovalList(id="a2"), ApprovalListResult)).approvals == []


async def test_status_events_reach_every_connection_in_order(gateway: RunningGateway) -> None:
    write_workflow(
        gateway.data_dir,
        "three",
        """
        name: Three
        steps:
          - {id: a, action: noop}
          - {id: b, action: noop}
          - {id: c, action: noop}
        """,
    )
    first = await gateway.client()
    second = await gateway.client()
    await second.subscribe(["workflow.status"])  # `first` receives them as its own
    await reload(first)
    execution_id = await trigger(first, "three")
    for client in (first, second):
        seen: list[tuple[str, list[str]]] = []
        while not seen or seen[-1][0] not in TERMINAL:
            event = await client.next_event("workflow.status")
            assert isinstance(event, WorkflowStatus)
            if event.execution_id == execution_id:
                steps = [r.step_id for r in event.step_results or []]
                seen.append((event.status, steps))
        assert seen[-1] == ("completed", ["c"])
        finished = [step for _, steps in seen for step in steps]
        assert finished == ["a", "b", "c"]


async def test_denial_cancels_with_reason(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "gated", GATED)
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "gated", {"who": "eve"})
    await client.next_event("workflow.approval.request")
    await approve(client, execution_id, "write", approved=False, comment="not today")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "cancelled"
    assert "denied" in (done.execution.error or "")
    assert "not today" in (done.execution.error or "")
    assert not (gateway.data_dir / "workspace" / "greeting.txt").exists()
    assert "write" not in [s.step_id for s in done.execution.steps]


async def test_branches_when_and_on_failure(gateway: RunningGateway) -> None:
    write_workflow(
        gateway.data_dir,
        "flow",
        """
        name: Flow
        inputs:
          n: {type: integer, default: 5}
        steps:
          - id: read
            action: tool
            tool: file.read
            args: {path: missing.txt}
            on_failure: recover
          - id: never
            action: noop
          - id: recover
            action: tool
            tool: file.write
            args: {path: n.txt, content: "{{ input.n }}", mode: overwrite}
            branches:
              - condition: "input.n > 3"
                goto: big
              - condition: "true"
                goto: small
          - id: small
            action: noop
            on_success: end
          - id: big
            action: noop
          - id: skipped
            action: noop
            when: "steps.recover.output.bytes > 100"
          - id: last
            action: noop
            when: "steps.read.status == 'failure' and steps.skipped.status == 'skipped'"
        """,
    )
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "flow")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "completed", done.execution.error
    assert [(s.step_id, s.status) for s in done.execution.steps] == [
        ("read", "failure"),
        ("recover", "success"),
        ("big", "success"),
        ("skipped", "skipped"),
        ("last", "success"),
    ]
    assert "missing.txt" in (done.execution.steps[0].error or "")
    small = await trigger(client, "flow", {"n": 1})
    done = await wait_status(client, small, TERMINAL)
    assert [s.step_id for s in done.execution.steps] == ["read", "recover", "small"]


async def test_retries_then_failure_names_the_step(gateway: RunningGateway) -> None:
    write_workflow(
        gateway.data_dir,
        "retry",
        """
        name: Retry
        steps:
          - id: flaky
            action: tool
            tool: file.read
            args: {path: nope.txt}
            retry: {attempts: 3, backoff: 10ms}
        """,
    )
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "retry")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "failed"
    assert [(s.step_id, s.attempt, s.status) for s in done.execution.steps] == [
        ("flaky", 1, "failure"),
        ("flaky", 2, "failure"),
        ("flaky", 3, "failure"),
    ]
    assert "flaky" in (done.execution.error or "")


@pytest.fixture
async def silent_server(data_dir: Path) -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers (a hung dependency).

    It listens on loopback, which http.request refuses unless allowed: the config it writes
    opens it, so request this fixture before the gateway that reads the config.
    """
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    (data_dir / "config.toml").write_text(f'[tools.http]\nallow = ["127.0.0.1:{port}"]\n')
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_step_timeout_cancels_a_blocked_call(
    silent_server: str, sqlite_gateway: RunningGateway
) -> None:
    write_workflow(
        sqlite_gateway.data_dir,
        "hang",
        f"""
        name: Hang
        steps:
          - id: call
            action: tool
            tool: http.request
            args: {{method: GET, url: "{silent_server}", timeout: 300}}
            timeout: 500ms
        """,
    )
    client = await sqlite_gateway.client()
    await reload(client)
    execution_id = await trigger(client, "hang")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "failed"
    assert "timed out after 0.5 s" in (done.execution.steps[0].error or "")


async def test_cancel_a_running_step(silent_server: str, sqlite_gateway: RunningGateway) -> None:
    write_workflow(
        sqlite_gateway.data_dir,
        "hang",
        f"""
        name: Hang
        steps:
          - id: call
            action: tool
            tool: http.request
            args: {{method: GET, url: "{silent_server}", timeout: 300}}
        """,
    )
    client = await sqlite_gateway.client()
    await reload(client)
    execution_id = await trigger(client, "hang")
    await asyncio.sleep(0.2)
    reply = await client.request(
        WorkflowCancel(id="c", execution_id=execution_id), WorkflowCancelled
    )
    assert reply.status == "cancelled"
    done = await execution(client, execution_id)
    assert [(s.step_id, s.status, s.error) for s in done.execution.steps] == [
        ("call", "failure", "cancelled")
    ]


async def test_cancel_a_paused_execution_closes_its_approval(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "gated", GATED)
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "gated", {"who": "x"})
    await client.next_event("workflow.approval.request")
    reply = await client.request(
        WorkflowCancel(id="c", execution_id=execution_id), WorkflowCancelled
    )
    assert reply.status == "cancelled"
    assert (await client.request(ApprovalList(id="a"), ApprovalListResult)).approvals == []
    with pytest.raises(GatewayError) as late:
        await approve(client, execution_id, "write")
    assert late.value.code == ErrorCode.NO_PENDING_APPROVAL


async def test_loop_guard(data_dir: Path) -> None:
    write_workflow(
        data_dir,
        "loop",
        """
        name: Loop
        steps:
          - id: spin
            action: noop
            branches:
              - {condition: "true", goto: spin}
        """,
    )
    async with in_process_gateway(data_dir, workflows={"max_step_runs": 25}) as gw:
        client = await gw.client()
        execution_id = await trigger(client, "loop")
        done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "failed"
    assert "loop guard" in (done.execution.error or "")
    assert len(done.execution.steps) == 25


async def test_input_validation_and_unknown_workflows(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "gated", GATED)
    write_workflow(
        gateway.data_dir,
        "broken",
        """
        name: Broken
        steps:
          - id: a
            action: noop
            aproval_required: true
        """,
    )
    client = await gateway.client()
    listing = await reload(client)
    by_id = {w.id: w for w in listing.workflows}
    assert by_id["gated"].valid
    assert by_id["gated"].inputs is not None
    assert by_id["gated"].inputs["who"].required
    assert not by_id["broken"].valid
    assert "aproval_required" in (by_id["broken"].error or "")
    assert "broken.yaml" in (by_id["broken"].error or "")
    again = await client.request(WorkflowList(id="l"), WorkflowListResult)
    assert {w.id for w in again.workflows} == {"gated", "broken"}

    cases = [
        ("gated", None, ErrorCode.INVALID_INPUT, "who"),
        ("gated", {"who": 5}, ErrorCode.INVALID_INPUT, "who"),
        ("gated", {"who": "a", "extra": 1}, ErrorCode.INVALID_INPUT, "extra"),
        ("nope", None, ErrorCode.WORKFLOW_NOT_FOUND, "nope"),
        ("broken", None, ErrorCode.WORKFLOW_INVALID, "aproval_required"),
    ]
    for workflow_id, raw, code, fragment in cases:
        with pytest.raises(GatewayError) as info:
            await trigger(client, workflow_id, raw)
        assert info.value.code == code
        assert fragment in info.value.message
    listed = await client.request(WorkflowExecutionList(id="x"), WorkflowExecutionListResult)
    assert listed.executions == []


async def test_running_execution_keeps_its_pinned_definition(gateway: RunningGateway) -> None:
    path = write_workflow(gateway.data_dir, "gated", GATED)
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "gated", {"who": "pin"})
    await client.next_event("workflow.approval.request")
    write_workflow(gateway.data_dir, "gated", GATED.replace("hello {{ input.who }}", "CHANGED"))
    assert "CHANGED" in path.read_text()
    await reload(client)
    await approve(client, execution_id, "write")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "completed"
    assert (gateway.data_dir / "workspace" / "greeting.txt").read_text() == "hello pin\n"


async def test_expression_errors_fail_the_step_not_the_engine(gateway: RunningGateway) -> None:
    write_workflow(
        gateway.data_dir,
        "bad_expr",
        """
        name: Bad expression
        steps:
          - id: a
            action: noop
            when: "steps.b.output.missing > 1"
          - id: b
            action: noop
        """,
    )
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "bad_expr")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "failed"
    assert "steps.b.output.missing > 1" in (done.execution.error or "")
    assert [s.step_id for s in done.execution.steps] == ["a"]


async def test_model_step_without_a_model_says_how_to_configure(
    gateway: RunningGateway,
) -> None:
    write_workflow(
        gateway.data_dir,
        "think",
        """
        name: Think
        steps:
          - {id: ask, action: model, prompt: "Say hi"}
        """,
    )
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "think")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "failed"
    assert "no model is configured" in (done.execution.error or "")
    assert "[models] default" in (done.execution.error or "")


async def test_durable_wait_pauses_then_completes(gateway: RunningGateway) -> None:
    write_workflow(
        gateway.data_dir,
        "nap",
        """
        name: Nap
        steps:
          - {id: nap, action: wait, duration: 300ms}
          - {id: after, action: noop}
        """,
    )
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "nap")
    paused = await wait_event(client, execution_id, "paused")
    assert paused.waiting_for == "timer"
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "completed"
    nap = done.execution.steps[0]
    assert nap.output["waitedUntil"] <= nap.finished_at.isoformat()  # type: ignore[index, union-attr]


async def test_execution_list_filters(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "gated", GATED)
    write_workflow(gateway.data_dir, "one", "name: One\nsteps:\n  - {id: a, action: noop}\n")
    client = await gateway.client()
    await reload(client)
    paused_id = await trigger(client, "gated", {"who": "x"})
    done_id = await trigger(client, "one")
    await wait_status(client, done_id, TERMINAL)
    await wait_status(client, paused_id, {"paused"})
    by_status = await client.request(
        WorkflowExecutionList(id="1", status="paused"), WorkflowExecutionListResult
    )
    assert [e.id for e in by_status.executions] == [paused_id]
    by_workflow = await client.request(
        WorkflowExecutionList(id="2", workflow_id="one"), WorkflowExecutionListResult
    )
    assert [(e.id, e.status, e.triggered_by) for e in by_workflow.executions] == [
        (done_id, "completed", "manual")
    ]
    with pytest.raises(GatewayError) as info:
        await execution(client, "no-such-execution")
    assert info.value.code == ErrorCode.EXECUTION_NOT_FOUND


async def test_until_without_offset_is_read_in_the_configured_zone(data_dir: Path) -> None:
    """A person writing `until: 2000-01-01T00:00:00` means their own midnight, not UTC's."""
    write_workflow(
        data_dir,
        "local",
        """
        name: Local midnight
        steps:
          - {id: sleep, action: wait, until: "2000-01-01T00:00:00"}
        """,
    )
    async with in_process_gateway(data_dir, timezone="America/New_York") as gateway:
        client = await gateway.client()
        execution_id = await trigger(client, "local")
        done = await wait_status(client, execution_id, {"completed", "failed"})
    assert done.execution.status == "completed"
    assert done.execution.steps[0].output == {"waitedUntil": "2000-01-01T05:00:00+00:00"}
