"""The durable workflow engine: the request API over the parts that run executions.

An execution is driven by a runner (`runner.StepRunner`), one task per execution this node
owns (`runners.Runners`); what a step does is `actions.Actions`; how a runner ends otherwise is
`endings.Endings`; orphaned executions and due waits are resumed, and leases renewed, by
`recovery.Recovery`; committed states are announced by `announcer.Announcer`. The store behind
all of them is one `ExecutionRepository` (see `store.execution_backends`): the engine never
knows which database runs.

This module holds what clients and the scheduler call: trigger, launch, approve, cancel, read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.approval_events import publish_resolved
from hearth.events import EventBus
from hearth.ids import time_ordered_id
from hearth.metrics import Metrics
from hearth.models import ModelFactory
from hearth.store import Database
from hearth.store.approvals import ApprovalRepository
from hearth.store.execution_backends import execution_repository
from hearth.store.executions import PAUSED, RUNNING, PinnedSource
from hearth.store.records import ApprovalRecord, ExecutionRecord, StepRunRecord
from hearth.tools import ToolRegistry
from hearth.workflows.actions import Actions
from hearth.workflows.announcer import Announcer
from hearth.workflows.catalog import WorkflowCatalog
from hearth.workflows.endings import Endings
from hearth.workflows.errors import (
    ExecutionNotFoundError,
    InvalidInputError,
    NoPendingApprovalError,
    WorkflowInvalidError,
    WorkflowNotFoundError,
)
from hearth.workflows.expressions import Expressions
from hearth.workflows.inputs import InputError, validate_input
from hearth.workflows.loader import LoadedWorkflow
from hearth.workflows.recovery import Recovery
from hearth.workflows.runner import StepRunner
from hearth.workflows.runners import Runners
from hearth.workflows.states import (
    CANCELLED,
    COMPLETED,
    END,
    FAILED,
    FAILURE,
    INTERRUPTED,
    MAX_BACKOFF,
    SKIPPED,
    SUCCESS,
    TERMINAL,
    EngineConfig,
    json_safe,
    now_utc,
)

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "END",
    "FAILED",
    "FAILURE",
    "INTERRUPTED",
    "MAX_BACKOFF",
    "SKIPPED",
    "SUCCESS",
    "TERMINAL",
    "EngineConfig",
    "WorkflowEngine",
]


class WorkflowEngine:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        catalog: WorkflowCatalog,
        tools: ToolRegistry,
        models: ModelFactory,
        workspace: Path,
        config: EngineConfig,
    ) -> None:
        self.db = db
        self.bus = bus
        self.catalog = catalog
        self.tools = tools
        self.models = models
        self.workspace = workspace
        self.config = config
        self.node = config.node_id
        self.executions = execution_repository(db)
        self.approvals = ApprovalRepository()
        self.expressions = Expressions()
        self.runners = Runners()
        self.announcer = Announcer(bus, self.executions)
        self.recovery = Recovery(
            executions=self.executions,
            runners=self.runners,
            announcer=self.announcer,
            config=config,
        )
        self.endings = Endings(
            db=db,
            executions=self.executions,
            approvals=self.approvals,
            announcer=self.announcer,
            config=config,
        )
        self.runner = StepRunner(
            db=db,
            bus=bus,
            executions=self.executions,
            approvals=self.approvals,
            tools=tools,
            expressions=self.expressions,
            actions=Actions(
                bus=bus,
                tools=tools,
                models=models,
                workspace=workspace,
                expressions=self.expressions,
            ),
            announcer=self.announcer,
            endings=self.endings,
            runners=self.runners,
            config=config,
            wake=self.recovery.wake,
        )
        self.runners.bind(self.runner.drive)
        self._metrics: Metrics | None = None

    @property
    def metrics(self) -> Metrics | None:
        """Where step and execution counts are recorded; the composition root sets it."""
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: Metrics | None) -> None:
        self._metrics = self.runner.metrics = self.endings.metrics = metrics

    @property
    def last_recovery(self) -> float | None:
        """Monotonic time of the last recovery pass that completed (`/readyz` checks it)."""
        return self.recovery.last_recovery

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.recovery.start()

    async def stop(self) -> None:
        """Stop runners without finishing their executions: they resume on the next start."""
        self.runners.stopping = True
        await self.recovery.stop()
        await self.runners.stop()

    async def recover_once(self) -> None:
        """Resume executions nobody drives: orphaned running ones and waits that are due."""
        await self.recovery.recover_once()

    # -- requests ---------------------------------------------------------------------------

    async def trigger(
        self,
        workflow_id: str,
        raw_input: Mapping[str, Any] | None = None,
        *,
        triggered_by: str = "manual",
        scheduled_for: datetime | None = None,
    ) -> ExecutionRecord:
        """Validate, persist and start an execution."""
        record, pin = self.prepare_execution(
            workflow_id, raw_input, triggered_by=triggered_by, scheduled_for=scheduled_for
        )
        await self.executions.create(record, pin)
        self.launch(record)
        return record

    def check_trigger(
        self, workflow_id: str, raw_input: Mapping[str, Any] | None
    ) -> tuple[LoadedWorkflow, dict[str, Any]]:
        """The loaded workflow and validated input; raises the service errors."""
        loaded = self.catalog.get(workflow_id)
        if loaded is None:
            known = ", ".join(w.id for w in self.catalog.all()) or "none"
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id!r} (known: {known}); workflows are the *.yaml files "
                f"in {', '.join(str(d) for d in self.catalog.directories)}"
            )
        if loaded.definition is None:
            raise WorkflowInvalidError(f"workflow {workflow_id!r} does not load: {loaded.error}")
        try:
            values = validate_input(loaded.definition, raw_input)
        except InputError as exc:
            raise InvalidInputError(exc.field, str(exc)) from None
        return loaded, values

    async def create_execution(
        self,
        conn: AsyncConnection,
        workflow_id: str,
        raw_input: Mapping[str, Any] | None = None,
        *,
        triggered_by: str = "manual",
        scheduled_for: datetime | None = None,
    ) -> ExecutionRecord:
        """Insert an execution inside the caller's transaction; `launch` it after commit.

        The scheduler uses this so that claiming a tick and creating its execution commit
        together: a crash can neither lose the run nor start it twice.
        """
        record, pin = self.prepare_execution(
            workflow_id, raw_input, triggered_by=triggered_by, scheduled_for=scheduled_for
        )
        await self.executions.pin_definition(
            conn, workflow_id, pin.content_hash, pin.source, pin.path, record.started_at
        )
        await self.executions.insert(conn, record)
        return record

    def prepare_execution(
        self,
        workflow_id: str,
        raw_input: Mapping[str, Any] | None = None,
        *,
        triggered_by: str = "manual",
        scheduled_for: datetime | None = None,
    ) -> tuple[ExecutionRecord, PinnedSource]:
        """The row a new execution starts as, and the source it pins; nothing written yet."""
        loaded, values = self.check_trigger(workflow_id, raw_input)
        definition = loaded.definition
        assert definition is not None
        now = now_utc()
        record = ExecutionRecord(
            id=time_ordered_id(),
            workflow_id=workflow_id,
            content_hash=loaded.content_hash,
            status=RUNNING,
            triggered_by=triggered_by,
            input=json_safe(values),
            current_step_id=definition.steps[0].id,
            visit_seq=1,
            attempt=1,
            step_count=0,
            waiting_for=None,
            wake_at=None,
            error=None,
            cancel_requested=False,
            scheduled_for=scheduled_for,
            owner_node=self.node,
            lease_expires_at=self.config.lease_until(now),
            started_at=now,
            updated_at=now,
            completed_at=None,
        )
        self.runners.definitions[(workflow_id, loaded.content_hash)] = definition
        pin = PinnedSource(workflow_id, loaded.content_hash, loaded.source, str(loaded.path))
        return record, pin

    def launch_at(
        self,
        records: Sequence[ExecutionRecord],
        at: datetime,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Start committed executions at `at`, then call `then` (on the loop).

        The scheduler commits a tick's executions a moment before the tick, so that the tick
        itself only has to start them. Until then the recovery pass leaves them alone; if the
        gateway stops first, the next start resumes them like any running execution. One
        timer for the lot, and `then` (the scheduler's announcements) queued behind the
        runners' first steps, so that a thousand executions of one tick start together.
        """
        loop = asyncio.get_running_loop()
        delay = max(0.0, (at - now_utc()).total_seconds())
        handle = loop.call_at(loop.time() + delay, self._launch_scheduled, records, then)
        for record in records:
            self.runners.scheduled[record.id] = handle

    def _launch_scheduled(
        self, records: Sequence[ExecutionRecord], then: Callable[[], None] | None
    ) -> None:
        for record in records:
            if self.runners.scheduled.pop(record.id, None) is not None:
                self.launch(record)
        if then is not None:
            asyncio.get_running_loop().call_soon(then)

    def launch(self, record: ExecutionRecord) -> None:
        """Announce and start a committed execution."""
        self.announcer.publish(record, [])
        if not self.runners.stopping and record.id not in self.runners.tasks:
            self.runners.state[record.id] = (record, [])  # nothing to read back: we just wrote it
        self.runners.spawn(record.id)

    async def approve(
        self,
        execution_id: str,
        step_id: str,
        approved: bool,
        *,
        by: str | None = None,
        comment: str | None = None,
    ) -> ApprovalRecord:
        """Resolve the pending approval of a step; the first answer wins."""
        now = now_utc()
        async with self.db.begin() as conn:
            record = await self.executions.get(execution_id, conn)
            if record is None:
                raise ExecutionNotFoundError(f"no execution {execution_id!r}")
            approval = await self.approvals.pending_for_step(conn, execution_id, step_id)
            if approval is None:
                raise NoPendingApprovalError(
                    f"nothing is waiting for approval at step {step_id!r} of execution "
                    f"{execution_id} (already answered, or never asked); `hearth approvals` "
                    "lists what is waiting"
                )
            status = "approved" if approved else "denied"
            if not await self.approvals.resolve(
                conn, approval.id, status, by=by, comment=comment, now=now
            ):
                raise NoPendingApprovalError(f"step {step_id!r} was already answered")
            interrupted = approval.kind == INTERRUPTED
            if approved:
                if interrupted:
                    # Run it again from the start, as a person decided.
                    await self.executions.forget_starts(conn, execution_id)
                ok = await self.executions.resume_paused(
                    conn, execution_id, self.node, "approval", now, self.config.lease_until(now)
                )
            elif interrupted:
                reason = (
                    f"step {step_id!r} was interrupted (the gateway stopped while it ran) and "
                    "not run again" + (f": {comment}" if comment else "")
                )
                ok = await self.executions.finish_paused(conn, execution_id, FAILED, reason, now)
            else:
                reason = f"step {step_id!r} was denied" + (f": {comment}" if comment else "")
                ok = await self.executions.finish_paused(conn, execution_id, CANCELLED, reason, now)
            if not ok:
                raise NoPendingApprovalError(
                    f"execution {execution_id} is no longer waiting (status {record.status})"
                )
        resolved = ApprovalRecord(
            **{
                **approval.__dict__,
                "status": status,
                "resolved_at": now,
                "resolved_by": by,
                "comment": comment,
            }
        )
        await self.announcer.publish_fresh(execution_id)
        publish_resolved(self.bus, approval, status, comment)
        if approved:
            self.runners.spawn(execution_id)
        return resolved

    async def cancel(self, execution_id: str) -> ExecutionRecord:
        record = await self.executions.get(execution_id)
        if record is None:
            raise ExecutionNotFoundError(f"no execution {execution_id!r}")
        if record.status in TERMINAL:
            return record
        now = now_utc()
        if record.status == PAUSED:
            async with self.db.begin() as conn:
                done = await self.executions.finish_paused(
                    conn, execution_id, CANCELLED, "cancelled on request", now
                )
                if done:
                    await self.approvals.close_for_execution(conn, execution_id, CANCELLED, now)
            if done:
                await self.announcer.publish_fresh(execution_id)
                return await self._must_get(execution_id)
        await self.executions.request_cancel(execution_id, now)
        task = self.runners.tasks.get(execution_id)
        if task is not None:
            self.runners.cancel_wanted.add(execution_id)
            task.cancel()
            await asyncio.wait({task}, timeout=10)
        return await self._must_get(execution_id)

    async def _must_get(self, execution_id: str) -> ExecutionRecord:
        record = await self.executions.get(execution_id)
        if record is None:
            raise ExecutionNotFoundError(f"no execution {execution_id!r}")
        return record

    async def get(self, execution_id: str) -> tuple[ExecutionRecord, list[StepRunRecord]]:
        record = await self._must_get(execution_id)
        return record, await self.executions.steps(execution_id)

    async def list_executions(
        self, *, workflow_id: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[ExecutionRecord]:
        return await self.executions.recent(workflow_id=workflow_id, status=status, limit=limit)

    async def pending_approvals(self) -> list[ApprovalRecord]:
        async with self.db.connect() as conn:
            return await self.approvals.pending(conn)
