"""Persisted approval requests. The first answer wins: resolution is a conditional UPDATE."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.audit import current_answerer
from hearth.store.records import ApprovalRecord
from hearth.store.tables import approvals

PENDING = "pending"


def _record(row: sa.Row[Any]) -> ApprovalRecord:
    return ApprovalRecord(**row._mapping)


class ApprovalRepository:
    """SQL for the `approvals` table; callers pass the connection so a resolution and the
    state change it causes (a resumed workflow, a denied tool call) commit together."""

    async def insert(self, conn: AsyncConnection, record: ApprovalRecord) -> None:
        await conn.execute(approvals.insert().values(**record.__dict__))

    async def get(self, conn: AsyncConnection, approval_id: str) -> ApprovalRecord | None:
        row = (await conn.execute(approvals.select().where(approvals.c.id == approval_id))).first()
        return _record(row) if row else None

    async def for_visit(
        self, conn: AsyncConnection, execution_id: str, visit_seq: int
    ) -> ApprovalRecord | None:
        row = (
            await conn.execute(
                approvals.select().where(
                    approvals.c.execution_id == execution_id, approvals.c.visit_seq == visit_seq
                )
            )
        ).first()
        return _record(row) if row else None

    async def pending_for_step(
        self, conn: AsyncConnection, execution_id: str, step_id: str
    ) -> ApprovalRecord | None:
        row = (
            await conn.execute(
                approvals.select().where(
                    approvals.c.execution_id == execution_id,
                    approvals.c.step_id == step_id,
                    approvals.c.status == PENDING,
                )
            )
        ).first()
        return _record(row) if row else None

    async def resolve(
        self,
        conn: AsyncConnection,
        approval_id: str,
        status: str,
        *,
        by: str | None,
        comment: str | None,
        now: datetime,
    ) -> bool:
        """Move a pending approval to `status`; False when someone else answered first.

        The answerer of the current request (`store.audit.current_answerer`), if any, is
        recorded with it.
        """
        answerer = current_answerer.get()
        audit = answerer.columns() if answerer is not None else {}
        result = await conn.execute(
            approvals.update()
            .where(approvals.c.id == approval_id, approvals.c.status == PENDING)
            .values(status=status, resolved_at=now, resolved_by=by, comment=comment, **audit)
        )
        return result.rowcount == 1

    async def close_for_execution(
        self, conn: AsyncConnection, execution_id: str, status: str, now: datetime
    ) -> None:
        await conn.execute(
            approvals.update()
            .where(approvals.c.execution_id == execution_id, approvals.c.status == PENDING)
            .values(status=status, resolved_at=now)
        )

    async def answered(self, conn: AsyncConnection, limit: int = 100) -> list[ApprovalRecord]:
        """The newest resolved approvals first, with who answered: the audit history."""
        query = (
            approvals.select()
            .where(approvals.c.status != PENDING)
            .order_by(approvals.c.resolved_at.desc(), approvals.c.requested_at.desc())
            .limit(limit)
        )
        return [_record(row) for row in await conn.execute(query)]

    async def pending(
        self, conn: AsyncConnection, kinds: Sequence[str] | None = None
    ) -> list[ApprovalRecord]:
        query = approvals.select().where(approvals.c.status == PENDING)
        if kinds:
            query = query.where(approvals.c.kind.in_(kinds))
        rows = await conn.execute(query.order_by(approvals.c.requested_at))
        return [_record(row) for row in rows]
