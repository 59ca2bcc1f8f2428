"""The runner: drives one execution through its steps, one committed transition at a time.

State lives in the database, not in Python objects: an execution row says where it is
(`current_step_id`, `visit_seq`, `attempt`) and the append-only `step_runs` journal says what
happened. Every transition is one fenced write, committed before it is announced on the bus;
a runner only writes while its node owns the execution (a renewable lease).

Pauses (approval gates, waits) release ownership; resuming is a conditional UPDATE, so the first
approval (or the first node to notice a due timer) wins and the step runs once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hearth.events import DomainEvent, EventBus
from hearth.metrics import Metrics
from hearth.models import ModelCallError
from hearth.store import Database
from hearth.store.approvals import ApprovalRepository
from hearth.store.executions import PAUSED, RUNNING, ExecutionRepository
from hearth.store.records import ApprovalRecord, ExecutionRecord, StepRunRecord
from hearth.tools import ToolArgumentsError, ToolError, ToolNotFoundError, ToolRegistry
from hearth.workflows.actions import Actions
from hearth.workflows.announcer import Announcer
from hearth.workflows.definition import StepDef, WorkflowDef
from hearth.workflows.durations import parse_until
from hearth.workflows.endings import Endings
from hearth.workflows.errors import StepFailedError
from hearth.workflows.expressions import ExpressionError, Expressions, expression_context
from hearth.workflows.loader import WorkflowFileError, parse_workflow_source
from hearth.workflows.runners import Runners
from hearth.workflows.states import (
    CANCELLED,
    COMPLETED,
    END,
    FAILED,
    FAILURE,
    INTERRUPTED,
    SKIPPED,
    SUCCESS,
    EngineConfig,
    LostOwnership,
    final_values,
    finished,
    json_safe,
    now_utc,
    position,
    with_changes,
)

log = logging.getLogger("hearth.workflows.engine")


class StepRunner:
    #: Where step and execution counts are recorded (`WorkflowEngine.metrics` sets it).
    metrics: Metrics | None = None

    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        executions: ExecutionRepository,
        approvals: ApprovalRepository,
        tools: ToolRegistry,
        expressions: Expressions,
        actions: Actions,
        announcer: Announcer,
        endings: Endings,
        runners: Runners,
        config: EngineConfig,
        wake: Callable[[str], None],
    ) -> None:
        self.db = db
        self.bus = bus
        self.executions = executions
        self.approvals = approvals
        self.tools = tools
        self.expressions = expressions
        self.actions = actions
        self.announcer = announcer
        self.endings = endings
        self.runners = runners
        self.config = config
        self.node = config.node_id
        #: Resumes a wait in this process when its time comes (`Recovery.wake`).
        self.wake = wake
        #: Removes secrets from a step's error before it is stored or published (a model
        #: provider's 401 body may echo the key); the composition root sets it.
        self.redact: Callable[[str], str] = str

    async def _definition(self, record: ExecutionRecord) -> WorkflowDef:
        key = (record.workflow_id, record.content_hash)
        cached = self.runners.definitions.get(key)
        if cached is not None:
            return cached
        source = await self.executions.definition_source(*key)
        if source is None:
            raise StepFailedError(f"the pinned definition of {record.workflow_id} is missing")
        try:
            definition = parse_workflow_source(source)
        except WorkflowFileError as exc:
            raise StepFailedError(f"the pinned definition no longer parses: {exc}") from None
        self.runners.definitions[key] = definition
        return definition

    async def drive(self, execution_id: str) -> None:
        try:
            while await self._advance(execution_id):
                pass
        except asyncio.CancelledError:
            if execution_id in self.runners.cancel_wanted and not self.runners.stopping:
                await self.endings.finish_cancelled(execution_id)
            elif self.runners.stopping:
                await self.endings.release(execution_id)
            raise
        except LostOwnership:
            log.info("execution %s is no longer ours; runner stops", execution_id)
        except Exception as exc:
            log.exception("runner for execution %s crashed", execution_id)
            await self.endings.crashed(execution_id, exc)
        finally:
            self.runners.tasks.pop(execution_id, None)
            self.runners.state.pop(execution_id, None)
            self.runners.cancel_wanted.discard(execution_id)
            if execution_id in self.runners.respawn:
                self.runners.respawn.discard(execution_id)
                self.runners.spawn(execution_id)

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
            **position(record),
            **final_values(status, error, now, step_count=run.seq if run is not None else None),
        }
        if not await self.executions.transition(record.id, self.node, values, run):
            raise LostOwnership
        if self.metrics is not None:
            self.metrics.execution_ended(record.workflow_id, status)

    def _observe_step(self, definition: WorkflowDef, run: StepRunRecord) -> None:
        if self.metrics is not None:
            action = definition.step(run.step_id).action
            self.metrics.step(action, (run.finished_at - run.started_at).total_seconds())

    async def _advance(self, execution_id: str) -> bool:
        """Take one step of the state machine; False when the runner should stop."""
        cached = self.runners.state.get(execution_id)
        interrupted = False
        if cached is not None:
            record, known_steps = cached
        else:
            loaded = await self.executions.get(execution_id)
            if loaded is None:
                return False
            record, known_steps = loaded, await self.executions.steps(execution_id)
            self.runners.state[execution_id] = (record, known_steps)
            # Read once per runner: after that the runner itself knows what it started.
            interrupted = record.status == RUNNING and await self.executions.was_started(
                execution_id, record.step_count + 1
            )
        if record.status != RUNNING or record.owner_node != self.node:
            return False
        if record.cancel_requested:
            self.runners.cancel_wanted.add(execution_id)
            await self.endings.finish_cancelled(execution_id)
            return False
        now = now_utc()
        try:
            definition = self.runners.definitions.get((record.workflow_id, record.content_hash))
            if definition is None:
                definition = await self._definition(record)
        except StepFailedError as exc:
            await self._finalise(record, FAILED, str(exc), now)
            await self.announcer.publish_fresh(execution_id)
            return False
        if record.current_step_id is None:
            await self._finalise(record, COMPLETED, None, now)
            await self.announcer.publish_fresh(execution_id)
            return False
        if record.step_count >= self.config.max_step_runs:
            reason = (
                f"loop guard: {record.step_count} step runs reached the limit of "
                f"{self.config.max_step_runs} (workflows.max_step_runs); check branches that "
                "go back to earlier steps"
            )
            await self._finalise(record, FAILED, reason, now)
            await self.announcer.publish_fresh(execution_id)
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
            input=record.input, steps=results, execution=execution, now=now_utc()
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
        started = now_utc()
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
                    record.id, seq, step.id, 1, SKIPPED, None, None, started, now_utc()
                )
                return await self._commit_step(
                    record, definition, run, definition.next_step_id(step.id)
                )

        limit = step.timeout_delta.total_seconds() if step.timeout_delta else None
        # One deadline for rendering and the action together: with a timer each, a step
        # could take twice its timeout.
        deadline = asyncio.get_running_loop().time() + limit if limit is not None else None
        try:
            # Rendered off the event loop, within the step's timeout (see Expressions.arender).
            async with asyncio.timeout_at(deadline):
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
                    record, CANCELLED, f"step {step.id!r} was {approval.status}", now_utc()
                )
                await self.announcer.publish_fresh(record.id)
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
                decision = self.actions.on_interrupt(step, args)
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
                        now_utc(),
                    )
                    await self._finalise(record, FAILED, reason, now_utc(), run)
                    await self.announcer.publish_fresh(record.id)
                    return False
                if decision == "ask":
                    return await self._pause_for_approval(
                        record, step, args, prompt, context(), None, kind=INTERRUPTED
                    )
                log.info("re-running interrupted step %s of %s", step.id, record.id)
            else:
                # Journalled before the tool runs: after a crash, this is what tells "it may
                # have run" from "it never started". Fenced: a node whose lease lapsed (the
                # execution was taken over) journals nothing and must not run the action.
                if not await self.executions.mark_started(
                    record.id, self.node, seq, step.id, record.attempt, started
                ):
                    raise LostOwnership
        timeout = step.timeout_delta
        error: str | None = None
        retryable = True
        output: Any = None
        scope: asyncio.Timeout | None = None
        try:
            if timeout is None:
                output = await self.actions.act(record, step, seq, args, prompt)
            else:
                async with asyncio.timeout_at(deadline) as scope:
                    output = await self.actions.act(record, step, seq, args, prompt)
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
            json_safe(output),
            None,
            started,
            now_utc(),
        )
        try:
            target = await self.actions.route(
                definition, step, lambda: self._context(record, definition, steps, run)
            )
        except ExpressionError as exc:
            return await self._failed(record, definition, step, seq, started, str(exc), False)
        return await self._commit_step(record, definition, run, target)

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
        now = now_utc()
        error = self.redact(error)
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
            values = {**position(retried), "updated_at": now}
            if not await self.executions.transition(record.id, self.node, values, run):
                raise LostOwnership
            self._remember(retried, run)
            self.announcer.publish(retried, [run])
            return True
        if step.on_failure:
            target = None if step.on_failure == END else step.on_failure
            return await self._commit_step(record, definition, run, target)
        reason = f"step {step.id!r} failed: {error}"
        await self._finalise(record, FAILED, reason, now, run)
        self.announcer.publish(finished(record, FAILED, reason, now, seq), [run])
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
        now = now_utc()
        if target is None:
            await self._finalise(record, COMPLETED, None, now, run)
        else:
            run = with_changes(run, next_step_id=target, next_visit_seq=run.seq + 1, next_attempt=1)
            if not await self.executions.advance(record.id, self.node, run):
                raise LostOwnership
        if target is None:
            self.announcer.publish(finished(record, COMPLETED, None, now, run.seq), [run])
            return False
        moved = with_changes(
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
        self.announcer.publish(moved, [run])
        return True

    def _remember(self, record: ExecutionRecord, run: StepRunRecord) -> None:
        cached = self.runners.state.get(record.id)
        steps = cached[1] if cached is not None else []
        steps.append(run)
        self.runners.state[record.id] = (record, steps)

    async def _wait(
        self,
        record: ExecutionRecord,
        definition: WorkflowDef,
        step: StepDef,
        seq: int,
        started: datetime,
        context: Callable[[], dict[str, Any]],
    ) -> bool:
        now = now_utc()
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
                **position(record),
                "status": PAUSED,
                "waiting_for": "timer",
                "wake_at": wake_at,
                "owner_node": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if not await self.executions.transition(record.id, self.node, paused):
                raise LostOwnership
            await self.announcer.publish_fresh(record.id)
            delay = (wake_at - now).total_seconds()
            asyncio.get_running_loop().call_later(delay, self.wake, record.id)
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
            target = await self.actions.route(definition, step, context)
        except ExpressionError as exc:
            return await self._failed(record, definition, step, seq, started, str(exc), False)
        return await self._commit_step(record, definition, run, target)

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
        now = now_utc()
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
        shown_args = json_safe(shown)
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
                    **position(record),
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
                raise LostOwnership
        await self.announcer.publish_fresh(record.id)
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
