"""SQL for chat sessions, their history and usage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hearth.store import keyset
from hearth.store.database import Database
from hearth.store.records import SessionRecord
from hearth.store.sqlite_writer import Prepared
from hearth.store.tables import chat_messages, chat_sessions, chat_usage

cs = chat_sessions.c
_INSERT_SESSION = Prepared(chat_sessions.insert())
cm = chat_messages.c
cu = chat_usage.c


def _session(row: sa.Row[Any]) -> SessionRecord:
    return SessionRecord(**row._mapping)


class ChatRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, record: SessionRecord) -> None:
        """Committed before the session is announced; on SQLite through the fast writer, so
        a new chat's first token is not held up by it."""
        if self.db.writer is not None:
            values = record.__dict__
            await self.db.writer.run(lambda conn: _INSERT_SESSION.execute(conn, values))
            return
        async with self.db.begin() as conn:
            await conn.execute(chat_sessions.insert().values(**record.__dict__))

    async def get(self, session_id: str) -> SessionRecord | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    chat_sessions.select().where(
                        sa.or_(cs.id == session_id, cs.session_key == session_id)
                    )
                )
            ).first()
            return _session(row) if row else None

    async def page(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> tuple[list[SessionRecord], int]:
        """Up to `limit` sessions, most recently updated first, after the (updated_at, id)
        position `after` (in that order); and how many there are in all."""
        query = chat_sessions.select()
        if after is not None:
            query = query.where(keyset.after(cs.updated_at, cs.id, after, newest_first=True))
        async with self.db.connect() as conn:
            rows = await conn.execute(
                query.order_by(cs.updated_at.desc(), cs.id.desc()).limit(limit)
            )
            records = [_session(row) for row in rows]
            total = await conn.scalar(sa.select(sa.func.count()).select_from(chat_sessions))
        return records, int(total or 0)

    async def answering(self, request_id: str) -> bool:
        """Whether any session is claimed by `request_id` (on whichever node runs it)."""
        async with self.db.connect() as conn:
            found = await conn.scalar(
                sa.select(cs.id).where(cs.active_request_id == request_id).limit(1)
            )
        return found is not None

    async def delete(self, session_id: str) -> bool:
        async with self.db.begin() as conn:
            await conn.execute(chat_messages.delete().where(cm.session_id == session_id))
            await conn.execute(chat_usage.delete().where(cu.session_id == session_id))
            result = await conn.execute(chat_sessions.delete().where(cs.id == session_id))
            return result.rowcount == 1

    async def claim(self, session_id: str, request_id: str, now: datetime, stale: datetime) -> bool:
        """Mark the session busy with `request_id` unless another stream holds it."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                chat_sessions.update()
                .where(
                    cs.id == session_id,
                    sa.or_(cs.active_request_id.is_(None), cs.active_since < stale),
                )
                .values(active_request_id=request_id, active_since=now)
            )
            return result.rowcount == 1

    async def release_all(self) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                chat_sessions.update()
                .where(cs.active_request_id.is_not(None))
                .values(active_request_id=None, active_since=None)
            )

    async def release(self, session_id: str, request_id: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                chat_sessions.update()
                .where(cs.id == session_id, cs.active_request_id == request_id)
                .values(active_request_id=None, active_since=None)
            )

    async def messages(self, session_id: str, limit: int | None = None) -> list[Any]:
        """Stored pydantic-ai messages (JSON), oldest first; the newest `limit` if given."""
        query = sa.select(cm.message).where(cm.session_id == session_id)
        async with self.db.connect() as conn:
            if limit is not None:
                rows = await conn.execute(query.order_by(cm.seq.desc()).limit(limit))
                return [row[0] for row in reversed(list(rows))]
            rows = await conn.execute(query.order_by(cm.seq))
            return [row[0] for row in rows]

    async def append(
        self,
        session_id: str,
        request_id: str,
        messages: Sequence[Any],
        usage: dict[str, Any],
        now: datetime,
        title: str | None,
    ) -> None:
        """Store one request's new messages and usage, atomically."""
        async with self.db.begin() as conn:
            last = (
                await conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(cm.seq), 0)).where(
                        cm.session_id == session_id
                    )
                )
            ).scalar_one()
            for offset, message in enumerate(messages, start=1):
                await conn.execute(
                    chat_messages.insert().values(
                        session_id=session_id,
                        seq=last + offset,
                        request_id=request_id,
                        message=message,
                        created_at=now,
                    )
                )
            await conn.execute(chat_usage.insert().values(session_id=session_id, **usage))
            values: dict[str, Any] = {
                "message_count": cs.message_count + len(messages),
                "updated_at": now,
            }
            if title is not None:
                values["title"] = sa.func.coalesce(cs.title, title)
            await conn.execute(chat_sessions.update().where(cs.id == session_id).values(**values))

    async def approve_tool(self, session_id: str, tool_name: str) -> None:
        record = await self.get(session_id)
        if record is None or tool_name in record.approved_tools:
            return
        async with self.db.begin() as conn:
            await conn.execute(
                chat_sessions.update()
                .where(cs.id == session_id)
                .values(approved_tools=[*record.approved_tools, tool_name])
            )

    async def usage(self, session_id: str | None) -> list[dict[str, Any]]:
        query = sa.select(
            cu.model,
            sa.func.sum(cu.input_tokens),
            sa.func.sum(cu.output_tokens),
            sa.func.sum(cu.total_tokens),
            sa.func.sum(cu.requests),
            sa.func.count(),
        ).group_by(cu.model)
        if session_id is not None:
            query = query.where(cu.session_id == session_id)
        async with self.db.connect() as conn:
            rows = await conn.execute(query.order_by(cu.model))
            return [
                {
                    "model": row[0],
                    "input_tokens": int(row[1] or 0),
                    "output_tokens": int(row[2] or 0),
                    "total_tokens": int(row[3] or 0),
                    "model_requests": int(row[4] or 0),
                    "chat_requests": int(row[5] or 0),
                }
                for row in rows
            ]
