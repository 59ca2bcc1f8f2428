"""How scheduled runs end: results recorded once, failures counted, history kept short.

Workflow results arrive as `workflow.status` events (from this node, or from others through
the bus); a target whose work is not a workflow execution (the heartbeat) reports through
`finish_run` itself. Results are handed to the store without waiting: every result that
arrives while the previous write commits joins the next one, and each is announced when its
own commit is done. A reconciliation pass catches results whose event was missed (a node was
down), and prunes the history of schedules that fired.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hearth.events import DomainEvent
from hearth.scheduling.announce import RunAnnouncer
from hearth.scheduling.config import SchedulerConfig
from hearth.scheduling.ticks import failure_values
from hearth.store.records import ScheduleRunRecord
from hearth.store.schedule_ticks import FailureState, Settle, TickStore

log = logging.getLogger("hearth.scheduling")

FINAL = frozenset({"completed", "failed", "cancelled"})
#: Executions' status events are queued for the results task. At a thousand ticks a second
#: a burst holds several thousand (start and end of each); dropped ones would only be caught
#: by the slower reconciliation pass.
RESULTS_QUEUE = 100_000
Outcome = tuple[ScheduleRunRecord, DomainEvent | None]


def scheduled_result(event: DomainEvent) -> bool:
    """A `workflow.status` event that closes a scheduled run. Only executions a schedule
    started have a run to close, and only their end does (events from older nodes carry no
    triggeredBy: those are checked). Asked at publish time, so the results task is not woken
    for the start and every step of every execution."""
    data = event.data
    return data.get("status") in FINAL and data.get("triggeredBy", "cron") == "cron"


def outcome_of(status: str, data: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """A workflow status as a run status and reason."""
    if status == "completed":
        return "ok", None
    return "failed", (data or {}).get("error") or status


class RunResults:
    def __init__(
        self,
        store: TickStore,
        announcer: RunAnnouncer,
        config: Callable[[], SchedulerConfig],
    ) -> None:
        self.store = store
        self.announcer = announcer
        self.config = config
        #: Schedules that recorded runs since the last prune.
        self.fired: set[str] = set()

    async def watch(self, subscription: Any) -> None:
        async for event in subscription:
            if scheduled_result(event):
                status, reason = outcome_of(event.data["status"], event.data)
                self._submit(event.data["executionId"], status, reason).add_done_callback(
                    self._finished
                )

    def _settle(self, status: str, reason: str | None) -> Settle[Outcome]:
        """`ok` resets the consecutive-failure count, `failed` adds to it (and may disable a
        workflow schedule), `skipped` leaves it alone. Hands back the run as announced."""

        def settle(
            run: ScheduleRunRecord, state: FailureState | None
        ) -> tuple[dict[str, Any], Outcome]:
            announced = replace(
                run, status=status, reason=reason if reason is not None else run.reason
            )
            values: dict[str, Any] = {}
            disabled: DomainEvent | None = None
            if state is not None:
                failures, enabled, target = state
                if status == "ok" and failures:
                    values["consecutive_failures"] = 0
                elif status == "failed":
                    limit = self.config().max_consecutive_failures
                    disabled = failure_values(
                        run.schedule_id, failures, enabled, target, str(reason), values, limit
                    )
            return values, (announced, disabled)

        return settle

    def _submit(self, execution_id: str, status: str, reason: str | None) -> asyncio.Future[Any]:
        return asyncio.ensure_future(
            self.store.finish_run(execution_id, status, reason, self._settle(status, reason))
        )

    def _finished(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("could not record the result of a scheduled run", exc_info=error)
            return
        self._announce(future.result())

    async def finish_run(self, execution_id: str, status: str, reason: str | None = None) -> None:
        """Record the outcome of the run that started `execution_id`, once: `ok`, `skipped`
        (the run found nothing to do) or `failed`."""
        self._announce(await self._submit(execution_id, status, reason))

    async def finish_execution(
        self, execution_id: str, status: str, data: Mapping[str, Any] | None = None
    ) -> None:
        await self.finish_run(execution_id, *outcome_of(status, data))

    def _announce(self, committed: tuple[ScheduleRunRecord, Outcome] | None) -> None:
        if committed is None:
            return
        run, disabled = committed[1]
        self.announcer.run(run)
        self.announcer.event(disabled)

    async def housekeep(self) -> None:
        """One reconciliation and pruning pass."""
        stale = await self.store.stale_running_runs()
        await asyncio.gather(*(self.finish_execution(e, s) for e, s in stale))
        pending, self.fired = self.fired, set()
        config = self.config()
        await self.store.prune(
            sorted(pending), datetime.now(UTC) - config.history, config.history_max
        )
