"""How a runner ends other than by finishing its workflow: cancelled, crashed, or stopped.

A cancel ends the execution with the step it was in journalled as failed; a crash is counted
(in the row, so restarts do not reset it) and resumed after a backoff, or fails the execution at
the limit; a gateway that stops releases its executions so that they resume at once elsewhere.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from hearth.metrics import Metrics
from hearth.store import Database
from hearth.store.approvals import ApprovalRepository
from hearth.store.executions import RUNNING, ExecutionRepository
from hearth.store.records import ExecutionRecord, StepRunRecord
from hearth.workflows.announcer import Announcer
from hearth.workflows.states import (
    CANCELLED,
    FAILED,
    FAILURE,
    MAX_BACKOFF,
    EngineConfig,
    LostOwnership,
    final_values,
    now_utc,
    position,
)

log = logging.getLogger("hearth.workflows.engine")


class Endings:
    #: Where execution counts are recorded (`WorkflowEngine.metrics` sets it).
    metrics: Metrics | None = None

    def __init__(
        self,
        *,
        db: Database,
        executions: ExecutionRepository,
        approvals: ApprovalRepository,
        announcer: Announcer,
        config: EngineConfig,
    ) -> None:
        self.db = db
        self.executions = executions
        self.approvals = approvals
        self.announcer = announcer
        self.config = config
        self.node = config.node_id

    async def release(self, execution_id: str) -> None:
        """Give up ownership so this (after restart) or another node resumes at once."""
        try:
            await self.executions.transition(
                execution_id, self.node, {"owner_node": None, "lease_expires_at": None}
            )
        except Exception:
            log.exception("could not release execution %s", execution_id)

    async def crashed(self, execution_id: str, exc: Exception) -> None:
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
            now = now_utc()
            seq = record.step_count + 1
            count = record.crash_count + 1 if record.crash_seq == seq else 1
            reason = f"{type(exc).__name__}: {exc}"
            counted = {**position(record), "crash_count": count, "crash_seq": seq}
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
            await self.release(execution_id)

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
        values = {**counted, **final_values(FAILED, error, now, step_count=seq)}
        run = StepRunRecord(
            record.id, seq, record.current_step_id, record.attempt, FAILURE, None, error, now, now
        )
        try:
            done = await self.executions.transition(record.id, self.node, values, run)
        except Exception:
            # The journal itself may be what keeps failing: end the execution without it.
            log.exception("could not journal the last crash of execution %s", record.id)
            values = {**counted, **final_values(FAILED, error, now)}
            done = await self.executions.transition(record.id, self.node, values)
        if done:
            await self.announcer.publish_fresh(record.id)

    async def finish_cancelled(self, execution_id: str) -> None:
        await self.executions.settle()  # a transition the runner queued before it was cancelled
        record = await self.executions.get(execution_id)
        if record is None or record.status != RUNNING:
            return
        now = now_utc()
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
            values = final_values(
                CANCELLED,
                "cancelled on request",
                now,
                step_count=record.step_count + (1 if record.current_step_id else 0),
            )
            if not await self.executions.update_owned(conn, record.id, self.node, values):
                raise LostOwnership
            await self.approvals.close_for_execution(conn, execution_id, CANCELLED, now)
        if self.metrics is not None:
            self.metrics.execution_ended(record.workflow_id, CANCELLED)
        await self.announcer.publish_fresh(execution_id)
