"""The durable workflow engine.

State lives in the database, not in Python objects: an execution row says where it is
(`current_step_id`, `visit_seq`, `attempt`) and the append-only `step_runs` journal says what
happened. A runner task drives one execution; every transition is one transaction, committed
before it is announced on the bus. A runner only writes while its node owns the execution
(a renewable lease), so with several gateways on one PostgreSQL an execution whose node died
is resumed by another node once the lease runs out.

Pauses (approval gates, waits) release ownership; resuming is a conditional UPDATE, so the first
approval (or the first node to notice a due timer) wins and the step runs once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.approval_events import publish_resolved
from hearth.events import DomainEvent, EventBus
from hearth.ids import time_ordered_id
from hearth.metrics import Metrics
from hearth.models import ModelCallError, ModelFactory, ModelNotConfiguredError, run_model
from hearth.store import Database
from hearth.store.approvals import ApprovalRepository
from hearth.store.executions import PAUSED, RUNNING, ExecutionRepository, PinnedSource, ex
from hearth.store.records import ApprovalRecord, ExecutionRecord, StepRunRecord
from hearth.tools import (
    ToolArgumentsError,
    ToolContext,
    ToolError,
    ToolNotFoundError,
    ToolRegistry,
)
from hearth.workflows.catalog import WorkflowCatalog
from hearth.workflows.definition import StepDef, WorkflowDef
from hearth.workflows.durations import parse_until
from hearth.workflows.errors import (
    ExecutionNotFoundError,
    InvalidInputError,
    NoPendingApprovalError,
    StepFailedError,
    WorkflowInvalidError,
    WorkflowNotFoundError,
)
from hearth.workflows.expressions import ExpressionError, Expressions, expression_context
from hearth.workflows.inputs import InputError, validate_input
from hearth.workflows.loader import LoadedWorkflow, WorkflowFileError, parse_workflow_source
from hearth.workflows.output_schema import check_output

log = logging.getLogger("hearth.workflows.engine")
_R = TypeVar("_R", ExecutionRecord, StepRunRecord)

COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
SUCCESS, FAILURE, SKIPPED = "success", "failure", "skipped"
END = "end"
#: No wait between attempts (retry or crash backoff) is longer than this.
MAX_BACKOFF = timedelta(minutes=5)
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class EngineConfig:
    node_id: str
    max_step_runs: int = 1000
    lease: timedelta = timedelta(seconds=30)
    recovery_interval_s: float = 5.0
    #: Consecutive crashes of the runner at one step run before the execution fails.
    crash_limit: int = 3
    #: The wait after the first crash; doubled after each further one (at most `MAX_BACKOFF`).
    crash_backoff: timedelta = timedelta(seconds=1)
    #: SQLite means one gateway process: running executions left by a crash are ours at once.
    exclusive: bool = False
    #: The zone a wait's `until` without an offset is read in (the configured `timezone`).
    timezone: str = "UTC"


class _LostOwnership(Exception):
    """A fenced write found the execution no longer ours (cancelled, or taken over)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _json_safe(value: Any) -> Any:
    """Tool and model outputs go into a JSON column and onto the wire."""
    if value is None or type(value) in (str, int, bool):
        return value
    return json.loads(json.dumps(value, default=str))


class WorkflowEngine:
    #: Where step and execution counts are recorded; the composition root sets it.
    metrics: Metrics | None = None

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
        self.executions = ExecutionRepository(db)
        self.approvals = ApprovalRepository()
        self.expressions = Expressions()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Committed executions waiting for their tick (`launch(at=...)`).
        self._scheduled: dict[str, asyncio.TimerHandle] = {}
        self._cancel_wanted: set[str] = set()
        #: Executions resumed (an approval, a due timer) while their previous runner was still
        #: wrapping up after the pause: started again as soon as that runner is gone.
        self._respawn: set[str] = set()
        self._definitions: dict[tuple[str, str], WorkflowDef] = {}
        #: What a runner knows after its own last commit, so a step needs no read-back.
        self._state: dict[str, tuple[ExecutionRecord, list[StepRunRecord]]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False
        #: Monotonic time of the last recovery pass that completed (`/readyz` checks it).
        self.last_recovery: float | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.recover_once()
        self._background = [
            asyncio.create_task(self._recovery_loop(), name="workflow-recovery"),
            asyncio.create_task(self._lease_loop(), name="workflow-leases"),
        ]

    async def stop(self) -> None:
        """Stop runners without finishing their executions: they resume on the next start."""
        self._stopping = True
        for handle in set(self._scheduled.values()):
            handle.cancel()  # committed as running: the next start resumes them
        self._scheduled.clear()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        runners = list(self._tasks.values())
        for task in runners:
            task.cancel()
        await asyncio.gather(*runners, return_exceptions=True)

    def _lease_until(self, now: datetime) -> datetime:
        return now + self.config.lease

    def _spawn(self, execution_id: str) -> None:
        """Start the runner of an execution this node owns; one runner per execution.

        A runner that just paused the execution may still be registered (it publishes the
        pause before it returns) when an approval or a due timer resumes it: the new runner
        then starts the moment the old one is gone, not at the next recovery pass.
        """
        if self._stopping:
            return
        if execution_id in self._tasks:
            self._respawn.add(execution_id)
            return
        task = asyncio.create_task(self._drive(execution_id), name=f"workflow-{execution_id}")
        self._tasks[execution_id] = task

    async def _recovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.recovery_interval_s)
            try:
                await self.recover_once()
            except Exception:
                log.exception("workflow recovery pass failed; retrying")
            else:
                self.last_recovery = time.monotonic()

    async def recover_once(self) -> None:
        """Resume executions nobody drives: orphaned running ones and waits that are due."""
        now = _now()
        owner_gone = sa.or_(
            ex.owner_node.is_(None), ex.owner_node == self.node, ex.lease_expires_at < now
        )
        condition = sa.true() if self.config.exclusive else owner_gone
        for execution_id in await self.executions.ids_where(ex.status == RUNNING, condition):
            if execution_id in self._tasks or execution_id in self._scheduled:
                continue
            claimed = (
                await self.executions.claim_running(
                    execution_id, self.node, now, self._lease_until(now)
                )
                if not self.config.exclusive
                else await self._claim_exclusive(execution_id, now)
            )
            if claimed:
                log.info("resuming execution %s", execution_id)
                self._spawn(execution_id)
        due = await self.executions.ids_where(
            ex.status == PAUSED, ex.waiting_for == "timer", ex.wake_at <= now
        )
        for execution_id in due:
            await self._resume_timer(execution_id)

    async def _claim_exclusive(self, execution_id: str, now: datetime) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(ex.id.table)
                .where(ex.id == execution_id, ex.status == RUNNING)
                .values(owner_node=self.node, lease_expires_at=self._lease_until(now))
            )
            return result.rowcount == 1

    async def _lease_loop(self) -> None:
        interval = max(self.config.lease.total_seconds() / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            ids = list(self._tasks)
            if not ids:
                continue
            try:
                held = await self.executions.renew_leases(self.node, ids, self._lease_until(_now()))
            except Exception:
                log.exception("could not renew workflow leases")
                continue
            for execution_id in ids:
                task = self._tasks.get(execution_id)
                if task is None or execution_id not in held:
                    continue
                owned, cancel = held[execution_id]
                if not owned:
                    log.warning("lost ownership of execution %s; stopping its runner", execution_id)
                    task.cancel()
                elif cancel:
                    self._cancel_wanted.add(execution_id)
                    task.cancel()

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
        now = _now()
        record = ExecutionRecord(
            id=time_ordered_id(),
            workflow_id=workflow_id,
            content_hash=loaded.content_hash,
            status=RUNNING,
            triggered_by=triggered_by,
            input=_json_safe(values),
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
            lease_expires_at=self._lease_until(now),
            started_at=now,
            updated_at=now,
            completed_at=None,
        )
        self._definitions[(workflow_id, loaded.content_hash)] = definition
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
        delay = max(0.0, (at - _now()).total_seconds())
        handle = loop.call_at(loop.time() + delay, self._launch_scheduled, records, then)
        for record in records:
            self._scheduled[record.id] = handle

    def _launch_scheduled(
        self, records: Sequence[ExecutionRecord], then: Callable[[], None] | None
    ) -> None:
        for record in records:
            if self._scheduled.pop(record.id, None) is not None:
                self.launch(record)
        if then is not None:
            asyncio.get_running_loop().call_soon(then)

    def launch(self, record: ExecutionRecord) -> None:
        """Announce and start a committed execution."""
        self._publish(record, [])
        if not self._stopping and record.id not in self._tasks:
            self._state[record.id] = (record, [])  # nothing to read back: we just wrote it
        self._spawn(record.id)

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
        now = _now()
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
                    conn, execution_id, self.node, "approval", now, self._lease_until(now)
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
        await self._publish_fresh(execution_id)
        publish_resolved(self.bus, approval, status, comment)
        if approved:
            self._spawn(execution_id)
        return resolved

    async def cancel(self, execution_id: str) -> ExecutionRecord:
        record = await self.executions.get(execution_id)
        if record is None:
            raise ExecutionNotFoundError(f"no execution {execution_id!r}")
        if record.status in TERMINAL:
            return record
        now = _now()
        if record.status == PAUSED:
            async with self.db.begin() as conn:
                done = await self.executions.finish_paused(
                    conn, execution_id, CANCELLED, "cancelled on request", now
                )
                if done:
                    await self.approvals.close_for_execution(conn, execution_id, CANCELLED, now)
            if done:
                await self._publish_fresh(execution_id)
                return await self._must_get(execution_id)
        await self.executions.request_cancel(execution_id, now)
        task = self._tasks.get(execution_id)
        if task is not None:
            self._cancel_wanted.add(execution_id)
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

    # -- the runner -------------------------------------------------------------------------

    async def _definition(self, record: ExecutionRecord) -> WorkflowDef:
        key = (record.workflow_id, record.content_hash)
        cached = self._definitions.get(key)
        if cached is not None:
            return cached
        source = await self.executions.definition_source(*key)
        if source is None:
            raise StepFailedError(f"the pinned definition of {record.workflow_id} is missing")
        try:
            definition = parse_workflow_source(source)
        except WorkflowFileError as exc:
            raise StepFailedError(f"the pinned definition no longer parses: {exc}") from None
        self._definitions[key] = definition
        return definition

    async def _drive(self, execution_id: str) -> None:
        try:
            while await self._advance(execution_id):
                pass
        except asyncio.CancelledError:
            if execution_id in self._cancel_wanted and not self._stopping:
                await self._finish_cancelled(execution_id)
            elif self._stopping:
                await self._release(execution_id)
            raise
        except _LostOwnership:
            log.info("execution %s is no longer ours; runner stops", execution_id)
        except Exception as exc:
            log.exception("runner for execution %s crashed", execution_id)
            await self._crashed(execution_id, exc)
        finally:
            self._tasks.pop(execution_id, None)
            self._state.pop(execution_id, None)
            self._cancel_wanted.discard(execution_id)
            if execution_id in self._respawn:
                self._respawn.discard(execution_id)
                self._spawn(execution_id)

    async def _release(self, execution_id: str) -> None:
        """Give up ownership so this (after restart) or another node resumes at once."""
        try:
            await self.executions.transition(
                execution_id, self.node, {"owner_node": None, "lease_expires_at": None}
            )
        except Exception:
            log.exception("could not release execution %s", execution_id)

    async def _crashed(self, execution_id: str, exc: Exception) -> None:
        """Count a crash at the current step run; resume after a backoff, or fail at the limit.

        An unexpected exception (a write the database refuses, a bug) would otherwise be
        resumed by the recovery pass forever, repeating whatever the step did each time. The
        count lives in the row, so restarts do not reset it; a step run that moves on does.
        """
        try:
            await self.executions.settle()
            record = await self.executions.get(execution_id)
            if record is None or record.status != RUNNING or record.owner_node != self.node:
                return
            now = _now()
            seq = record.step_count + 1
            count = record.crash_count + 1 if record.crash_seq == seq else 1
            reason = f"{type(exc).__name__}: {exc}"
            counted = {**_position(record), "crash_count": count, "crash_seq": seq}
            if count >= self.config.crash_limit and record.current_step_id is not None:
                error = f"crashed {count} times at step {record.current_step_id!r}: {reason}"
                await self._fail_crashed(record, seq, counted, error, now)
                return
            backoff = min(self.config.crash_backoff * 2 ** (count - 1), MAX_BACKOFF)
            log.warning(
                "execution %s crashed at step run %s (%s of %s); resuming after %s s",
                execution_id,
                seq,
                count,
                self.config.crash_limit,
                backoff.total_seconds(),
            )
            released = {
                **counted,
                "next_attempt_at": now + backoff,
                "owner_node": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if not await self.executions.transition(execution_id, self.node, released):
                return
        except Exception:
            log.exception("could not record the crash of execution %s", execution_id)
            await self._release(execution_id)

    async def _fail_crashed(
        self,
        record: ExecutionRecord,
        seq: int,
        counted: dict[str, Any],
        error: str,
        now: datetime,
    ) -> None:
        """End a poison execution, journalling the step as failed when the database lets us."""
        assert record.current_step_id is not None
        values = {**counted, **self._final_values(FAILED, error, now, step_count=seq)}
        run = StepRunRecord(
            record.id, seq, record.current_step_id, record.attempt, FAILURE, None, error, now, now
        )
        try:
            done = await self.executions.transition(record.id, self.node, values, run)
        except Exception:
            # The journal itself may be what keeps failing: end the execution without it.
            log.exception("could not journal the last crash of execution %s", record.id)
            values = {**counted, **self._final_values(FAILED, error, now)}
            done = await self.executions.transition(record.id, self.node, values)
        if done:
            await self._publish_fresh(record.id)

    async def _finish_cancelled(self, execution_id: str) -> None:
        await self.executions.settle()  # a transition the runner queued before it was cancelled
        record = await self.executions.get(execution_id)
        if record is None or record.status != RUNNING:
            return
        now = _now()
        async with self.db.begin() as conn:
            if record.current_step_id:
                await self.executions.append_step(
                    conn,
                    StepRunRecord(
                        execution_id,
                        record.step_count + 1,
                        record.current_step_id,
                        record.attempt,
                        FAILURE,
                        None,
                        "cancelled",
                        now,
                        now,
                    ),
                )
            values = self._final_values(
                CANCELLED,
                "cancelled on request",
                now,
                step_count=record.step_count + (1 if record.current_step_id else 0),
            )
            if not await self.executions.update_owned(conn, record.id, self.node, values):
                raise _LostOwnership
            await self.approvals.close_for_execution(conn, execution_id, CANCELLED, now)
        if self.metrics is not None:
            self.metrics.execution_ended(record.workflow_id, CANCELLED)
        await self._publish_fresh(execution_id)

    async def _finalise(
        self,
        record: ExecutionRecord,
        status: str,
        error: str | None,
        now: datetime,
        run: StepRunRecord | None = None,
    ) -> None:
        """Journal `run` (if any) and end the execution with `status`, fenced."""
        values = {
            **_position(record),
            **self._final_values(
                status, error, now, step_count=run.seq if run is not None else None
            ),
        }
        if not await self.executions.transition(record.id, self.node, values, run):
            raise _LostOwnership
        if self.metrics is not None:
            self.metrics.execution_ended(record.workflow_id, status)

    def _observe_step(self, definition: WorkflowDef, run: StepRunRecord) -> None:
        if self.metrics is not None:
            action = definition.step(run.step_id).action
            self.metrics.step(action, (run.finished_at - run.started_at).total_seconds())

    @staticmethod
    def _final_values(
        status: str, error: str | None, now: datetime, step_count: int | None = None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "owner_node": None,
            "lease_expires_at": None,
            "completed_at": now,
            "updated_at": now,
            "waiting_for": None,
        }
        if step_count is not None:
            values["step_count"] = step_count
        return values

    async def _advance(self, execution_id: str) -> bool:
        """Take one step of the state machine; False when the runner should stop."""
        cached = self._state.get(execution_id)
        interrupted = False
        if cached is not None:
            record, known_steps = cached
        else:
            loaded = await self.executions.get(execution_id)
            if loaded is None:
                return False
            record, known_steps = loaded, await self.executions.steps(execution_id)
            self._state[execution_id] = (record, known_steps)
            # Read once per runner: after that the runner itself knows what it started.
            interrupted = record.status == RUNNING and await self.executions.was_started(
                execution_id, record.step_count + 1
            )
        if record.status != RUNNING or record.owner_node != self.node:
            return False
        if record.cancel_requested:
            self._cancel_wanted.add(execution_id)
            await self._finish_cancelled(execution_id)
            return False
        now = _now()
        try:
            definition = self._definitions.get((record.workflow_id, record.content_hash))
            if definition is None:
                definition = await self._definition(record)
        except StepFailedError as exc:
            await self._finalise(record, FAILED, str(exc), now)
            await self._publish_fresh(execution_id)
            return False
        if record.current_step_id is None:
            await self._finalise(record, COMPLETED, None, now)
            await self._publish_fresh(execution_id)
            return False
        if record.step_count >= self.config.max_step_runs:
            reason = (
                f"loop guard: {record.step_count} step runs reached the limit of "
                f"{self.config.max_step_runs} (workflows.max_step_runs); check branches that "
                "go back to earlier steps"
            )
            await self._finalise(record, FAILED, reason, now)
            await self._publish_fresh(execution_id)
            return False
        if record.next_attempt_at is not None:
            # A retry's or a crash's backoff, persisted: a restart waits for the rest of it.
            delay = (record.next_attempt_at - now).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
        return await self._visit(
            record,
            definition,
            definition.step(record.current_step_id),
            known_steps,
            interrupted=interrupted,
        )

    def _context(
        self,
        record: ExecutionRecord,
        definition: WorkflowDef,
        steps: Sequence[StepRunRecord],
        extra: StepRunRecord | None = None,
    ) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {
            s.id: {"status": None, "output": None, "error": None} for s in definition.steps
        }
        for run in [*steps, *([extra] if extra else [])]:
            results[run.step_id] = {"status": run.status, "output": run.output, "error": run.error}
        execution = {
            "id": record.id,
            "workflowId": record.workflow_id,
            "triggeredBy": record.triggered_by,
            "scheduledFor": record.scheduled_for.isoformat() if record.scheduled_for else None,
            "startedAt": record.started_at.isoformat(),
        }
        return expression_context(
            input=record.input, steps=results, execution=execution, now=_now()
        )

    async def _visit(
        self,
        record: ExecutionRecord,
        definition: WorkflowDef,
        step: StepDef,
        steps: Sequence[StepRunRecord],
        *,
        interrupted: bool = False,
    ) -> bool:
        seq = record.step_count + 1
        started = _now()
        built: list[dict[str, Any]] = []

        def context() -> dict[str, Any]:
            """Built on first use: most steps (a noop, a tool with literal args) need none."""
            if not built:
                built.append(self._context(record, definition, steps))
            return built[0]

        gated = step.approval_required
        if step.action == "tool" and step.tool is not None and step.tool in self.tools:
            gated = gated or self.tools.get(step.tool).always_gated
        approval: ApprovalRecord | None = None
        if gated:
            async with self.db.connect() as conn:
                approval = await self.approvals.for_visit(conn, record.id, record.visit_seq)
        approved = approval is not None and approval.status == "approved"

        if step.when and not approved and record.attempt == 1:
            try:
                wanted = await self.expressions.aevaluate(step.when, context())
            except ExpressionError as exc:
                return await self._failed(record, definition, step, seq, started, str(exc), False)
            if not wanted:
                run = StepRunRecord(
                    record.id, seq, step.id, 1, SKIPPED, None, None, started, _now()
                )
                return await self._commit_step(
                    record, definition, run, definition.next_step_id(step.id)
                )

        limit = step.timeout_delta.total_seconds() if step.timeout_delta else None
        try:
            # Rendered off the event loop, within the step's timeout (see Expressions.arender).
            async with asyncio.timeout(limit):
                args = (
                    await self.expressions.arender(step.args, context())
                    if step.action == "tool"
                    else {}
                )
                prompt = (
                    await self.expressions.arender(step.prompt, context()) if step.prompt else None
                )
        except ExpressionError as exc:
            return await self._failed(record, definition, step, seq, started, str(exc), False)
        except TimeoutError:
            reason = f"timed out after {limit:g} s while rendering the step's templates"
            return await self._failed(record, definition, step, seq, started, reason, False)

        if gated and not approved:
            if approval is not None and approval.status != "pending":
                await self._finalise(
                    record, CANCELLED, f"step {step.id!r} was {approval.status}", _now()
                )
                await self._publish_fresh(record.id)
                return False
            return await self._pause_for_approval(
                record, step, args, prompt, context(), approval, kind="workflow"
            )

        if step.action == "wait":
            return await self._wait(record, definition, step, seq, started, context)

        if approved and approval is not None and step.action == "tool":
            # Run exactly what the person saw and approved, not a fresh rendering.
            args = approval.args
        if step.action == "tool":
            assert step.tool is not None
            if interrupted:
                decision = self._on_interrupt(step, args)
                if decision == "fail":
                    reason = (
                        f"step {step.id!r} was interrupted (the gateway stopped while it ran) "
                        "and its on_interrupt is 'fail'"
                    )
                    run = StepRunRecord(
                        record.id,
                        seq,
                        step.id,
                        record.attempt,
                        FAILURE,
                        None,
                        reason,
                        started,
                        _now(),
                    )
                    await self._finalise(record, FAILED, reason, _now(), run)
                    await self._publish_fresh(record.id)
                    return False
                if decision == "ask":
                    return await self._pause_for_approval(
                        record, step, args, prompt, context(), None, kind=INTERRUPTED
                    )
                log.info("re-running interrupted step %s of %s", step.id, record.id)
            else:
                # Journalled before the tool runs: after a crash, this is what tells "it may
                # have run" from "it never started".
                await self.executions.mark_started(record.id, seq, step.id, record.attempt, started)
        timeout = step.timeout_delta
        error: str | None = None
        retryable = True
        output: Any = None
        scope: asyncio.Timeout | None = None
        try:
            if timeout is None:
                output = await self._act(record, step, seq, args, prompt)
            else:
                async with asyncio.timeout(timeout.total_seconds()) as scope:
                    output = await self._act(record, step, seq, args, prompt)
        except TimeoutError:
            if scope is not None and scope.expired():
                error = f"timed out after {timeout.total_seconds():g} s" if timeout else "timed out"
            else:
                error = "timed out (inside the action)"
        except (StepFailedError, ToolError, ModelCallError) as exc:
            error = str(exc)
            # Retrying cannot fix configuration or arguments; only transient failures retry.
            retryable = not (
                (isinstance(exc, StepFailedError) and exc.code is not None)
                or isinstance(exc, ToolNotFoundError | ToolArgumentsError)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("step %s of %s raised", step.id, record.id)
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            return await self._failed(record, definition, step, seq, started, error, retryable)
        run = StepRunRecord(
            record.id,
            seq,
            step.id,
            record.attempt,
            SUCCESS,
            _json_safe(output),
            None,
            started,
            _now(),
        )
        try:
            target = await self._route(
                definition, step, lambda: self._context(record, definition, steps, run)
            )
        except ExpressionError as exc:
            return await self._failed(record, definition, step, seq, started, str(exc), False)
        return await self._commit_step(record, definition, run, target)

    def _on_interrupt(self, step: StepDef, args: Any) -> str:
        """`retry`, `ask` or `fail` for a tool step the gateway stopped in (see docs)."""
        if step.on_interrupt != "ask":
            return step.on_interrupt
        assert step.tool is not None
        return "retry" if self.tools.idempotent(step.tool, args) else "ask"

    async def _route(
        self,
        definition: WorkflowDef,
        step: StepDef,
        context: Callable[[], dict[str, Any]],
    ) -> str | None:
        if step.branches:
            names = context()
            for branch in step.branches:
                if await self.expressions.aevaluate(branch.condition, names):
                    return None if branch.goto == END else branch.goto
        if step.on_success:
            return None if step.on_success == END else step.on_success
        return definition.next_step_id(step.id)

    async def _act(
        self, record: ExecutionRecord, step: StepDef, seq: int, args: Any, prompt: Any
    ) -> Any:
        if step.action == "noop":
            return None
        if step.action == "tool":
            assert step.tool is not None
            context = ToolContext(
                workspace=self.workspace,
                bus=self.bus,
                # The same when an interrupted step runs again, new for every retry and visit.
                idempotency_key=f"{record.id}:{step.id}:{record.visit_seq}:{record.attempt}",
                source=f"workflow:{record.workflow_id}",
                execution_id=record.id,
                step_id=step.id,
            )
            return await self.tools.call(step.tool, args, context)
        if step.action == "model":
            try:
                resolved = self.models.resolve()
            except ModelNotConfiguredError as exc:
                raise StepFailedError(str(exc), code="MODEL_NOT_CONFIGURED") from None
            answer = await run_model(resolved, str(prompt), output_schema=step.output_schema)
            check_output(step.output_schema, answer)
            return answer
        raise StepFailedError(f"unknown action {step.action!r}")

    async def _wait(
        self,
        record: ExecutionRecord,
        definition: WorkflowDef,
        step: StepDef,
        seq: int,
        started: datetime,
        context: Callable[[], dict[str, Any]],
    ) -> bool:
        now = _now()
        wake_at = record.wake_at
        if wake_at is None:
            try:
                delta = step.duration_delta
                if delta is not None:
                    wake_at = now + delta
                else:
                    until = await self.expressions.arender(step.until, context())
                    wake_at = parse_until(str(until), ZoneInfo(self.config.timezone))
            except (ExpressionError, ValueError) as exc:
                return await self._failed(record, definition, step, seq, started, str(exc), False)
        if wake_at > now:
            paused = {
                **_position(record),
                "status": PAUSED,
                "waiting_for": "timer",
                "wake_at": wake_at,
                "owner_node": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if not await self.executions.transition(record.id, self.node, paused):
                raise _LostOwnership
            await self._publish_fresh(record.id)
            delay = (wake_at - now).total_seconds()
            asyncio.get_running_loop().call_later(delay, self._wake, record.id)
            return False
        run = StepRunRecord(
            record.id,
            seq,
            step.id,
            record.attempt,
            SUCCESS,
            {"waitedUntil": wake_at.isoformat()},
            None,
            started,
            now,
        )
        try:
            target = await self._route(definition, step, context)
        except ExpressionError as exc:
            return await self._failed(record, definition, step, seq, started, str(exc), False)
        return await self._commit_step(record, definition, run, target)

    def _wake(self, execution_id: str) -> None:
        """Timer fired in this process: resume now instead of at the next recovery pass."""
        if not self._stopping:
            task = asyncio.ensure_future(self._resume_timer(execution_id))
            self._background.append(task)
            task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        if task in self._background:
            self._background.remove(task)

    async def _resume_timer(self, execution_id: str) -> None:
        now = _now()
        try:
            async with self.db.begin() as conn:
                resumed = await self.executions.resume_paused(
                    conn,
                    execution_id,
                    self.node,
                    "timer",
                    now,
                    self._lease_until(now),
                    extra=[ex.wake_at <= now],
                )
        except Exception:
            log.exception("could not resume execution %s after its wait", execution_id)
            return
        if resumed:
            await self._publish_fresh(execution_id)
            self._spawn(execution_id)

    async def _pause_for_approval(
        self,
        record: ExecutionRecord,
        step: StepDef,
        args: Any,
        prompt: Any,
        context: dict[str, Any],
        existing: ApprovalRecord | None,
        *,
        kind: str,
    ) -> bool:
        """Pause until a person answers: a gate (`workflow`) or an interrupted step."""
        now = _now()
        if kind == INTERRUPTED:
            title = (
                f"Step {step.id!r} may or may not have run before the gateway stopped; "
                "run it again?"
            )
        elif step.approval_prompt:
            try:
                title = str(await self.expressions.arender(step.approval_prompt, context))
            except ExpressionError as exc:
                title = f"Approve step {step.id}? (approval_prompt failed: {exc})"
        else:
            title = step.description or f"Approve step {step.id} ({step.action})?"
        shown: Any = {}
        if step.action == "tool":
            shown = args
        elif step.action == "model":
            shown = {"prompt": prompt}
        shown_args = _json_safe(shown)
        async with self.db.begin() as conn:
            if existing is None:
                await self.approvals.insert(
                    conn,
                    ApprovalRecord(
                        id=str(uuid.uuid4()),
                        kind=kind,
                        status="pending",
                        execution_id=record.id,
                        step_id=step.id,
                        # One gate per visit (a unique key); an interruption may come again
                        # in the same visit, so it is not tied to one.
                        visit_seq=record.visit_seq if kind != INTERRUPTED else None,
                        session_id=None,
                        tool_call_id=None,
                        tool_name=step.tool,
                        title=title,
                        args=shown_args,
                        risk=None,
                        requested_at=now,
                        expires_at=None,
                        resolved_at=None,
                        resolved_by=None,
                        comment=None,
                    ),
                )
            ok = await self.executions.update_owned(
                conn,
                record.id,
                self.node,
                {
                    **_position(record),
                    # A gate comes before the step starts: a wait's time counts from the approval.
                    "wake_at": None,
                    "status": PAUSED,
                    "waiting_for": "approval",
                    "owner_node": None,
                    "lease_expires_at": None,
                    "updated_at": now,
                },
            )
            if not ok:
                raise _LostOwnership
        await self._publish_fresh(record.id)
        self.bus.publish(
            DomainEvent(
                "workflow.approval.request",
                {
                    "executionId": record.id,
                    "workflowId": record.workflow_id,
                    "stepId": step.id,
                    "stepDescription": step.description or title,
                    "args": shown_args,
                    "prompt": title,
                    "kind": kind,
                },
            )
        )
        return False

    async def _failed(
        self,
        record: ExecutionRecord,
        definition: WorkflowDef,
        step: StepDef,
        seq: int,
        started: datetime,
        error: str,
        retryable: bool,
    ) -> bool:
        now = _now()
        run = StepRunRecord(
            record.id, seq, step.id, record.attempt, FAILURE, None, error, started, now
        )
        self._observe_step(definition, run)
        retry = step.retry
        if retryable and retry is not None and record.attempt < retry.attempts:
            run = replace(
                run,
                next_step_id=step.id,
                next_visit_seq=record.visit_seq,
                next_attempt=record.attempt + 1,
            )
            retried = replace(
                record,
                attempt=record.attempt + 1,
                step_count=seq,
                updated_at=now,
                next_attempt_at=now + retry.delay(record.attempt),
            )
            # The row is written too (not only the journal, as for a step that moves on), so
            # that the next attempt's time survives a restart; `_advance` waits for it.
            values = {**_position(retried), "updated_at": now}
            if not await self.executions.transition(record.id, self.node, values, run):
                raise _LostOwnership
            self._remember(retried, run)
            self._publish(retried, [run])
            return True
        if step.on_failure:
            target = None if step.on_failure == END else step.on_failure
            return await self._commit_step(record, definition, run, target)
        reason = f"step {step.id!r} failed: {error}"
        await self._finalise(record, FAILED, reason, now, run)
        self._publish(_finished(record, FAILED, reason, now, seq), [run])
        return False

    async def _commit_step(
        self,
        record: ExecutionRecord,
        definition: WorkflowDef,
        run: StepRunRecord,
        target: str | None,
    ) -> bool:
        """Journal the step and move to `target` (None: the execution is complete)."""
        if run.status != FAILURE:  # a failed attempt was counted by `_failed`
            self._observe_step(definition, run)
        now = _now()
        if target is None:
            await self._finalise(record, COMPLETED, None, now, run)
        else:
            run = _with(run, next_step_id=target, next_visit_seq=run.seq + 1, next_attempt=1)
            if not await self.executions.advance(record.id, self.node, run):
                raise _LostOwnership
        if target is None:
            self._publish(_finished(record, COMPLETED, None, now, run.seq), [run])
            return False
        moved = _with(
            record,
            current_step_id=target,
            visit_seq=run.seq + 1,
            attempt=1,
            step_count=run.seq,
            wake_at=None,
            next_attempt_at=None,
            updated_at=now,
        )
        self._remember(moved, run)
        self._publish(moved, [run])
        return True

    def _remember(self, record: ExecutionRecord, run: StepRunRecord) -> None:
        cached = self._state.get(record.id)
        steps = cached[1] if cached is not None else []
        steps.append(run)
        self._state[record.id] = (record, steps)

    # -- events -----------------------------------------------------------------------------

    async def _publish_fresh(self, execution_id: str) -> None:
        """Announce the committed state; awaited so events keep the order of transitions."""
        record = await self.executions.get(execution_id)
        if record is not None:
            self._publish(record, [])

    def _publish(self, record: ExecutionRecord, runs: Sequence[StepRunRecord]) -> None:
        data: dict[str, Any] = {
            "executionId": record.id,
            "workflowId": record.workflow_id,
            "status": record.status,
            "currentStepId": record.current_step_id,
            "waitingFor": record.waiting_for,
            "error": record.error,
            "triggeredBy": record.triggered_by,
        }
        if runs:
            data["stepResults"] = [
                {
                    "seq": run.seq,
                    "stepId": run.step_id,
                    "attempt": run.attempt,
                    "status": run.status,
                    "output": run.output,
                    "error": run.error,
                }
                for run in runs
            ]
        self.bus.publish(DomainEvent("workflow.status", data))


def _with(record: _R, **changes: Any) -> _R:
    """`dataclasses.replace` for the runner's hot path, at a fraction of its cost.

    The records are plain frozen dataclasses (no `__post_init__`, no slots), so a copy of the
    instance dict with the changes applied is exactly what `replace` would build.
    """
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__)
    copy.__dict__.update(changes)
    return copy


def _position(record: ExecutionRecord) -> dict[str, Any]:
    """The row's position columns, written with every row update so that the journal only
    overrides them for steps taken since (see `ExecutionRepository.advance`).

    The wake-up time belongs to the position: on SQLite a step only appends its journal row,
    so the row may still hold an earlier wait's `wake_at`; writing the runner's own value
    (None once it moved on) keeps that stale time from being read back as the next wait's.
    """
    return {
        "current_step_id": record.current_step_id,
        "visit_seq": record.visit_seq,
        "attempt": record.attempt,
        "step_count": record.step_count,
        "wake_at": record.wake_at,
        "next_attempt_at": record.next_attempt_at,
    }


def _finished(
    record: ExecutionRecord, status: str, error: str | None, now: datetime, step_count: int
) -> ExecutionRecord:
    """The record as `_finalise` leaves it, for announcing without reading it back."""
    return _with(
        record,
        status=status,
        error=error,
        owner_node=None,
        lease_expires_at=None,
        completed_at=now,
        updated_at=now,
        waiting_for=None,
        step_count=step_count,
    )
