"""Counts read when `/metrics` is scraped: cheap aggregate queries, never kept in memory twice."""

from __future__ import annotations

import sqlalchemy as sa

from hearth.store.database import Database
from hearth.store.tables import approvals, workflow_executions

UNFINISHED = ("running", "paused", "pending")


async def live_counts(db: Database) -> tuple[int, int]:
    """(executions running or paused, approvals pending) across the whole database."""
    async with db.connect() as conn:
        running = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(workflow_executions)
            .where(workflow_executions.c.status.in_(UNFINISHED))
        )
        pending = await conn.scalar(
            sa.select(sa.func.count()).select_from(approvals).where(approvals.c.status == "pending")
        )
    return int(running or 0), int(pending or 0)
