"""Workflow messages. Names and fields of the original design are kept; new fields are optional."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Event, Reply, WireModel

ExecutionStatus = Literal["running", "paused", "completed", "failed", "cancelled"]
StepStatus = Literal["success", "failure", "skipped"]
TriggeredBy = Literal["manual", "cron", "heartbeat"]
WaitingFor = Literal["approval", "timer"]


class WorkflowInput(WireModel):
    type: Literal["string", "number", "integer", "boolean", "object", "array"]
    default: Any = None
    required: bool = False
    description: str | None = None


class WorkflowInfo(WireModel):
    id: str
    name: str
    description: str | None = None
    definition_path: str
    valid: bool
    error: str | None = None
    inputs: dict[str, WorkflowInput] | None = None


class ExecutionSummary(WireModel):
    id: str
    workflow_id: str
    status: ExecutionStatus
    current_step_id: str | None = None
    started_at: datetime
    completed_at: datetime | None = None
    triggered_by: TriggeredBy
    waiting_for: WaitingFor | None = None
    error: str | None = None


class StepRun(WireModel):
    seq: int
    step_id: str
    attempt: int
    status: StepStatus
    output: Any = None
    error: str | None = None
    started_at: datetime
    finished_at: datetime | None = None


class ExecutionDetail(ExecutionSummary):
    input: dict[str, Any] = Field(default_factory=dict)
    scheduled_for: datetime | None = None
    steps: list[StepRun] = Field(default_factory=list)


# -- client messages ------------------------------------------------------------------------


class WorkflowTrigger(ClientMessage):
    type: Literal["workflow.trigger"] = "workflow.trigger"
    workflow_id: str = Field(min_length=1, max_length=128)
    input: dict[str, Any] | None = None


class WorkflowApproval(ClientMessage):
    type: Literal["workflow.approval"] = "workflow.approval"
    execution_id: str = Field(min_length=1, max_length=64)
    step_id: str = Field(min_length=1, max_length=64)
    approved: bool
    comment: str | None = Field(default=None, max_length=2000)


class WorkflowList(ClientMessage):
    type: Literal["workflow.list"] = "workflow.list"


class WorkflowReload(ClientMessage):
    type: Literal["workflow.reload"] = "workflow.reload"


class WorkflowExecutionList(ClientMessage):
    type: Literal["workflow.execution.list"] = "workflow.execution.list"
    workflow_id: str | None = None
    status: ExecutionStatus | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class WorkflowExecutionGet(ClientMessage):
    type: Literal["workflow.execution.get"] = "workflow.execution.get"
    execution_id: str = Field(min_length=1, max_length=64)


class WorkflowCancel(ClientMessage):
    type: Literal["workflow.cancel"] = "workflow.cancel"
    execution_id: str = Field(min_length=1, max_length=64)


# -- replies --------------------------------------------------------------------------------


class WorkflowTriggered(Reply):
    type: Literal["workflow.triggered"] = "workflow.triggered"
    execution_id: str
    workflow_id: str


class WorkflowApprovalResolved(Reply):
    type: Literal["workflow.approval.resolved"] = "workflow.approval.resolved"
    execution_id: str
    step_id: str
    approved: bool


class WorkflowListResult(Reply):
    type: Literal["workflow.list.result"] = "workflow.list.result"
    workflows: list[WorkflowInfo]


class WorkflowExecutionListResult(Reply):
    type: Literal["workflow.execution.list.result"] = "workflow.execution.list.result"
    executions: list[ExecutionSummary]


class WorkflowExecutionResult(Reply):
    type: Literal["workflow.execution.result"] = "workflow.execution.result"
    execution: ExecutionDetail


class WorkflowCancelled(Reply):
    type: Literal["workflow.cancelled"] = "workflow.cancelled"
    execution_id: str
    status: ExecutionStatus


# -- events ---------------------------------------------------------------------------------


class StepResult(WireModel):
    seq: int | None = None
    step_id: str
    attempt: int | None = None
    status: StepStatus
    output: Any = None
    error: str | None = None


class WorkflowStatus(Event):
    """Sent on each transition of an execution to the connection that started, approved or
    cancelled it, and to those subscribed to `workflow.status`."""

    topic: ClassVar[str | None] = "workflow.status"
    type: Literal["workflow.status"] = "workflow.status"
    execution_id: str
    workflow_id: str
    status: ExecutionStatus
    current_step_id: str | None = None
    waiting_for: WaitingFor | None = None
    error: str | None = None
    triggered_by: TriggeredBy | None = None
    step_results: list[StepResult] | None = None


class WorkflowApprovalRequest(Event):
    """A gated step waits for a person; any connection may answer with `workflow.approval`."""

    topic: ClassVar[str | None] = "workflow.approval.request"
    type: Literal["workflow.approval.request"] = "workflow.approval.request"
    execution_id: str
    workflow_id: str
    step_id: str
    step_description: str
    args: Any = None
    prompt: str | None = None
    #: `workflow` for an approval gate, `interrupted` when the gateway stopped while the step
    #: ran and a person decides whether it runs again. Absent from older gateways: a gate.
    kind: Literal["workflow", "interrupted"] | None = None


CLIENT_MESSAGES = (
    WorkflowTrigger,
    WorkflowApproval,
    WorkflowList,
    WorkflowReload,
    WorkflowExecutionList,
    WorkflowExecutionGet,
    WorkflowCancel,
)
SERVER_MESSAGES = (
    WorkflowTriggered,
    WorkflowApprovalResolved,
    WorkflowListResult,
    WorkflowExecutionListResult,
    WorkflowExecutionResult,
    WorkflowCancelled,
    WorkflowStatus,
    WorkflowApprovalRequest,
)
