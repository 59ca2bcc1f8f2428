"""Resuming executions nobody drives, and keeping the leases of those this node drives.

With several gateways on one PostgreSQL an execution whose node died is resumed by another node
once its lease ran out; on SQLite (one process) running executions left by a crash are ours at
once. Waits that came due are resumed here too, and by a timer in the process that paused them
(`wake`), whichever comes first: resuming is a conditional UPDATE, so only one wins.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from hearth.store.executions import PAUSED, RUNNING, ExecutionRepository, ex
from hearth.supervised import SupervisedLoop
from hearth.workflows.announcer import Announcer
from hearth.workflows.runners import Runners
from hearth.workflows.states import EngineConfig, now_utc

log = logging.getLogger("hearth.workflows.engine")


class Recovery:
    def __init__(
        self,
        *,
        executions: ExecutionRepository,
        runners: Runners,
        announcer: Announcer,
        config: EngineConfig,
    ) -> None:
        self.executions = executions
        self.runners = runners
        self.announcer = announcer
        self.config = config
        self.node = config.node_id
        renew_every = max(config.lease.total_seconds() / 3, 0.2)
        self._recovery = SupervisedLoop(
            "workflow recovery",
            self._recovery_pass,
            interval_s=config.recovery_interval_s,
            initial_delay_s=config.recovery_interval_s,
            log=log,
        )
        self._leases = SupervisedLoop(
            "workflow lease renewal",
            self._renew_leases,
            interval_s=renew_every,
            initial_delay_s=renew_every,
            log=log,
        )

    @property
    def last_recovery(self) -> float | None:
        """Monotonic time of the last recovery pass that completed (`/readyz` checks it)."""
        return self._recovery.last_ok

    async def start(self) -> None:
        await self.recover_once()  # before serving; a database that fails here fails start-up
        self._recovery.start()
        self._leases.start()

    async def stop(self) -> None:
        await self._recovery.stop()
        await self._leases.stop()

    async def _recovery_pass(self) -> None:
        await self.recover_once()

    async def recover_once(self) -> None:
        """Resume executions nobody drives: orphaned running ones and waits that are due."""
        now = now_utc()
        owner_gone = sa.or_(
            ex.owner_node.is_(None), ex.owner_node == self.node, ex.lease_expires_at < now
        )
        condition = sa.true() if self.config.exclusive else owner_gone
        for execution_id in await self.executions.ids_where(ex.status == RUNNING, condition):
            if execution_id in self.runners.tasks or execution_id in self.runners.scheduled:
                continue
            lease_until = self.config.lease_until(now)
            claimed = (
                await self.executions.claim_exclusive(execution_id, self.node, lease_until)
                if self.config.exclusive
                else await self.executions.claim_running(execution_id, self.node, now, lease_until)
            )
            if claimed:
                log.info("resuming execution %s", execution_id)
                self.runners.spawn(execution_id)
        due = await self.executions.ids_where(
            ex.status == PAUSED, ex.waiting_for == "timer", ex.wake_at <= now
        )
        for execution_id in due:
            await self.resume_timer(execution_id)
        # Retention: start marks of executions that finished since the last pass.
        await self.executions.prune_starts()

    def wake(self, execution_id: str) -> None:
        """Timer fired in this process: resume now instead of at the next recovery pass."""
        if not self.runners.stopping:
            self.runners.in_background(self.resume_timer(execution_id))

    async def resume_timer(self, execution_id: str) -> None:
        now = now_utc()
        try:
            resumed = await self.executions.resume_due_wait(
                execution_id, self.node, now, self.config.lease_until(now)
            )
        except Exception:
            log.exception("could not resume execution %s after its wait", execution_id)
            return
        if resumed:
            await self.announcer.publish_fresh(execution_id)
            self.runners.spawn(execution_id)

    async def _renew_leases(self) -> None:
        """Extend the leases of the executions this node runs; stop runners that lost theirs."""
        ids = list(self.runners.tasks)
        if not ids:
            return
        lease_until = self.config.lease_until(now_utc())
        held = await self.executions.renew_leases(self.node, ids, lease_until)
        for execution_id in ids:
            task = self.runners.tasks.get(execution_id)
            if task is None or execution_id not in held:
                continue
            owned, cancel = held[execution_id]
            if not owned:
                log.warning("lost ownership of execution %s; stopping its runner", execution_id)
                task.cancel()
            elif cancel:
                self.runners.cancel_wanted.add(execution_id)
                task.cancel()
