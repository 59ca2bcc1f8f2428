"""workflow.* requests: trigger, approve, list, inspect, cancel, reload."""

from __future__ import annotations

from typing import Any

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.protocol import ErrorCode, ProtocolError
from hearth.protocol.messages.workflows import (
    ExecutionDetail,
    ExecutionSummary,
    StepRun,
    WorkflowApproval,
    WorkflowApprovalResolved,
    WorkflowCancel,
    WorkflowCancelled,
    WorkflowExecutionGet,
    WorkflowExecutionList,
    WorkflowExecutionListResult,
    WorkflowExecutionResult,
    WorkflowInfo,
    WorkflowInput,
    WorkflowList,
    WorkflowListResult,
    WorkflowReload,
    WorkflowTrigger,
    WorkflowTriggered,
)
from hearth.store.records import ExecutionRecord
from hearth.workflows.errors import (
    ExecutionNotFoundError,
)
from hearth.workflows.loader import LoadedWorkflow


def _info(item: LoadedWorkflow) -> WorkflowInfo:
    definition = item.definition
    inputs = (
        {
            name: WorkflowInput(
                type=spec.type,
                default=spec.default,
                required=spec.required,
                description=spec.description,
            )
            for name, spec in definition.inputs.items()
        }
        if definition is not None and definition.inputs
        else None
    )
    return WorkflowInfo(
        id=item.id,
        name=definition.name if definition else item.id,
        description=definition.description if definition else None,
        definition_path=str(item.path),
        valid=item.valid,
        error=item.error,
        inputs=inputs,
    )


def summary(record: ExecutionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "workflow_id": record.workflow_id,
        "status": record.status,
        "current_step_id": record.current_step_id,
        "started_at": record.started_at,
        "completed_at": record.completed_at,
        "triggered_by": record.triggered_by,
        "waiting_for": record.waiting_for,
        "error": record.error,
    }


async def _execution_id(ctx: HandlerContext, given: str) -> str:
    """The full id for `given`: the id itself, or the one execution whose id starts with it.

    Resolved here, in the gateway, so every client (the CLI, Telegram, scripts) accepts the
    short ids people read in tables.
    """
    engine = ctx.state.workflows
    if await engine.executions.get(given) is not None:
        return given
    matches = await engine.executions.ids_starting_with(given)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ExecutionNotFoundError(f"no execution {given!r}")
    shown = ", ".join(matches[:4]) + (", …" if len(matches) > 4 else "")
    raise ProtocolError(
        ErrorCode.EXECUTION_NOT_FOUND,
        f"{given!r} is the start of more than one execution id ({shown}); give more of it",
    )


@handles(WorkflowTrigger)
async def trigger(message: WorkflowTrigger, ctx: HandlerContext) -> WorkflowTriggered:
    record = await ctx.state.workflows.trigger(message.workflow_id, message.input)
    return WorkflowTriggered(id=message.id, execution_id=record.id, workflow_id=record.workflow_id)


@handles(WorkflowApproval)
async def approval(message: WorkflowApproval, ctx: HandlerContext) -> WorkflowApprovalResolved:
    client = ctx.connection.client
    by = f"{client.name} ({ctx.connection.id})" if client else ctx.connection.id
    execution_id = await _execution_id(ctx, message.execution_id)
    await ctx.state.workflows.approve(
        execution_id,
        message.step_id,
        message.approved,
        by=by,
        comment=message.comment,
    )
    return WorkflowApprovalResolved(
        id=message.id,
        execution_id=execution_id,
        step_id=message.step_id,
        approved=message.approved,
    )


@handles(WorkflowList)
def list_workflows(message: WorkflowList, ctx: HandlerContext) -> WorkflowListResult:
    items = ctx.state.workflows.catalog.all()
    return WorkflowListResult(id=message.id, workflows=[_info(i) for i in items])


@handles(WorkflowReload)
async def reload(message: WorkflowReload, ctx: HandlerContext) -> WorkflowListResult:
    items = ctx.state.workflows.catalog.reload()
    return WorkflowListResult(id=message.id, workflows=[_info(i) for i in items])


@handles(WorkflowExecutionList)
async def list_executions(
    message: WorkflowExecutionList, ctx: HandlerContext
) -> WorkflowExecutionListResult:
    records = await ctx.state.workflows.list_executions(
        workflow_id=message.workflow_id, status=message.status, limit=message.limit
    )
    return WorkflowExecutionListResult(
        id=message.id, executions=[ExecutionSummary(**summary(r)) for r in records]
    )


@handles(WorkflowExecutionGet)
async def get_execution(
    message: WorkflowExecutionGet, ctx: HandlerContext
) -> WorkflowExecutionResult:
    record, runs = await ctx.state.workflows.get(await _execution_id(ctx, message.execution_id))
    detail = ExecutionDetail(
        **summary(record),
        input=record.input,
        scheduled_for=record.scheduled_for,
        steps=[
            StepRun(
                seq=run.seq,
                step_id=run.step_id,
                attempt=run.attempt,
                status=run.status,
                output=run.output,
                error=run.error,
                started_at=run.started_at,
                finished_at=run.finished_at,
            )
            for run in runs
        ],
    )
    return WorkflowExecutionResult(id=message.id, execution=detail)


@handles(WorkflowCancel)
async def cancel(message: WorkflowCancel, ctx: HandlerContext) -> WorkflowCancelled:
    record = await ctx.state.workflows.cancel(await _execution_id(ctx, message.execution_id))
    return WorkflowCancelled(
        id=message.id,
        execution_id=record.id,
        status=record.status,
    )
