"""SQL for the Telegram channel: poller lease and offset, inbox, outbound ledger, users, pairing.

The inbox and the ledger are what make the channel safe to kill at any moment: an update is
stored together with the new `getUpdates` offset before anything acts on it, and a message is
claimed in the ledger (by what caused it) before it is sent, so a restart neither loses an
update nor sends a reply, a prompt or an alert twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hearth.store.database import Database
from hearth.store.membership import one_of
from hearth.store.tables import (
    gateway_nodes,
    telegram_bots,
    telegram_inbox,
    telegram_outbox,
    telegram_pairings,
    telegram_users,
)

tb = telegram_bots.c
ti = telegram_inbox.c
to = telegram_outbox.c
tu = telegram_users.c
tp = telegram_pairings.c

RECEIVED = "received"
STREAMING = "streaming"
DONE = "done"
SENDING = "sending"
SENT = "sent"
CLOSED = "closed"


@dataclass(frozen=True)
class InboxItem:
    update_id: int
    status: str
    payload: dict[str, Any]
    request_id: str | None


@dataclass(frozen=True)
class OutboxItem:
    chat_id: int
    cause: str
    kind: str
    ref: str | None
    status: str
    message_id: int | None
    text: str
    entities: list[dict[str, Any]] | None


@dataclass(frozen=True)
class TelegramUser:
    user_id: int
    name: str
    source: str
    allowed: bool
    session_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Pairing:
    code: str
    user_id: int
    chat_id: int
    name: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


def _outbox(row: sa.Row[Any]) -> OutboxItem:
    m = row._mapping
    return OutboxItem(
        chat_id=m["chat_id"],
        cause=m["cause"],
        kind=m["kind"],
        ref=m["ref"],
        status=m["status"],
        message_id=m["message_id"],
        text=m["text"],
        entities=m["entities"],
    )


class TelegramRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the poller's lease and offset -------------------------------------------------------

    async def acquire_lease(self, bot_id: str, node: str, now: datetime, until: datetime) -> bool:
        """Take or renew the poller lease: one node polls a bot, whatever the node count."""
        async with self.db.begin() as conn:
            exists = (await conn.execute(sa.select(tb.bot_id).where(tb.bot_id == bot_id))).first()
            if exists is None:
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            telegram_bots.insert().values(
                                bot_id=bot_id,
                                update_offset=0,
                                lease_owner=node,
                                lease_expires_at=until,
                                updated_at=now,
                            )
                        )
                    return True
                except sa.exc.IntegrityError:
                    pass
            result = await conn.execute(
                telegram_bots.update()
                .where(
                    tb.bot_id == bot_id,
                    sa.or_(
                        tb.lease_owner.is_(None),
                        tb.lease_owner == node,
                        tb.lease_expires_at < now,
                    ),
                )
                .values(lease_owner=node, lease_expires_at=until, updated_at=now)
            )
            return result.rowcount == 1

    async def lease_holder(self, bot_id: str) -> tuple[str, str | None, int | None] | None:
        """(owner node, its hostname, its pid) of a held lease; host and pid are None when the
        node is not registered."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(tb.lease_owner, gateway_nodes.c.hostname, gateway_nodes.c.pid)
                    .select_from(
                        telegram_bots.outerjoin(
                            gateway_nodes, gateway_nodes.c.node_id == tb.lease_owner
                        )
                    )
                    .where(tb.bot_id == bot_id, tb.lease_owner.is_not(None))
                )
            ).first()
            return (row[0], row[1], row[2]) if row else None

    async def take_over(
        self, bot_id: str, dead: str, node: str, now: datetime, until: datetime
    ) -> bool:
        """Take the lease from a node known to be dead, without waiting for it to expire."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                telegram_bots.update()
                .where(tb.bot_id == bot_id, tb.lease_owner == dead)
                .values(lease_owner=node, lease_expires_at=until, updated_at=now)
            )
            return result.rowcount == 1

    async def release_lease(self, bot_id: str, node: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                telegram_bots.update()
                .where(tb.bot_id == bot_id, tb.lease_owner == node)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def offset(self, bot_id: str) -> int:
        async with self.db.connect() as conn:
            value = (
                await conn.execute(sa.select(tb.update_offset).where(tb.bot_id == bot_id))
            ).scalar()
            return int(value or 0)

    # -- the inbox ----------------------------------------------------------------------------

    async def receive(
        self, bot_id: str, node: str, updates: list[tuple[int, dict[str, Any]]], now: datetime
    ) -> list[int]:
        """Store updates and advance the offset past them in one transaction.

        Only the lease holder may do it (the UPDATE names it), so a node that lost its lease
        while a long poll was in flight cannot store or advance anything. Updates already in
        the inbox (Telegram redelivers when the offset was not confirmed yet) are skipped;
        the ids stored now are returned.
        """
        if not updates:
            return []
        stored: list[int] = []
        async with self.db.begin() as conn:
            moved = await conn.execute(
                telegram_bots.update()
                .where(tb.bot_id == bot_id, tb.lease_owner == node)
                .values(
                    update_offset=sa.func.max(tb.update_offset, max(u for u, _ in updates) + 1)
                    if self.db.backend == "sqlite"
                    else sa.func.greatest(tb.update_offset, max(u for u, _ in updates) + 1),
                    updated_at=now,
                )
            )
            if moved.rowcount != 1:
                raise LeaseLostError(f"this node no longer polls bot {bot_id}")
            known = {
                int(row[0])
                for row in await conn.execute(
                    sa.select(ti.update_id).where(
                        ti.bot_id == bot_id, one_of(ti.update_id, [u for u, _ in updates])
                    )
                )
            }
            for update_id, payload in updates:
                if update_id in known:
                    continue
                await conn.execute(
                    telegram_inbox.insert().values(
                        bot_id=bot_id,
                        update_id=update_id,
                        status=RECEIVED,
                        payload=payload,
                        request_id=None,
                        received_at=now,
                        handled_at=None,
                    )
                )
                stored.append(update_id)
        return stored

    async def unfinished(self, bot_id: str) -> list[InboxItem]:
        """Updates not done yet, oldest first (what a restart must finish)."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                sa.select(ti.update_id, ti.status, ti.payload, ti.request_id)
                .where(ti.bot_id == bot_id, ti.status != DONE)
                .order_by(ti.update_id)
            )
            return [InboxItem(int(r[0]), r[1], r[2], r[3]) for r in rows]

    async def get_update(self, bot_id: str, update_id: int) -> InboxItem | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(ti.update_id, ti.status, ti.payload, ti.request_id).where(
                        ti.bot_id == bot_id, ti.update_id == update_id
                    )
                )
            ).first()
            return InboxItem(int(row[0]), row[1], row[2], row[3]) if row else None

    async def mark_streaming(self, bot_id: str, update_id: int, request_id: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                telegram_inbox.update()
                .where(ti.bot_id == bot_id, ti.update_id == update_id)
                .values(status=STREAMING, request_id=request_id)
            )

    async def mark_done(self, bot_id: str, update_id: int, now: datetime) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                telegram_inbox.update()
                .where(ti.bot_id == bot_id, ti.update_id == update_id)
                .values(status=DONE, handled_at=now)
            )

    async def prune(self, bot_id: str, before: datetime) -> None:
        """Forget handled updates and settled ledger rows older than `before` (Telegram never
        redelivers an update that old, and no restart needs those rows)."""
        async with self.db.begin() as conn:
            await conn.execute(
                telegram_inbox.delete().where(
                    ti.bot_id == bot_id, ti.status == DONE, ti.received_at < before
                )
            )
            await conn.execute(
                telegram_outbox.delete().where(
                    to.bot_id == bot_id,
                    to.status != SENDING,
                    # a prompt of a still pending approval keeps its row (and its buttons)
                    sa.or_(to.status == CLOSED, to.kind != "approval"),
                    to.updated_at < before,
                )
            )

    # -- the outbound ledger ------------------------------------------------------------------

    async def claim(
        self,
        bot_id: str,
        chat_id: int,
        cause: str,
        *,
        kind: str,
        ref: str | None,
        text: str,
        now: datetime,
    ) -> OutboxItem | None:
        """Claim the right to send the message `cause` names to `chat_id`.

        None means it is ours to send now; otherwise the existing row is returned (sent
        already, or being sent by a process that died: see `OutboxItem.status`).
        """
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    telegram_outbox.insert().values(
                        bot_id=bot_id,
                        chat_id=chat_id,
                        cause=cause,
                        kind=kind,
                        ref=ref,
                        status=SENDING,
                        message_id=None,
                        text=text,
                        entities=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            return None
        except sa.exc.IntegrityError:
            existing = await self.sent(bot_id, chat_id, cause)
            if existing is None:  # pragma: no cover - deleted in between
                raise
            return existing

    async def sent(self, bot_id: str, chat_id: int, cause: str) -> OutboxItem | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    telegram_outbox.select().where(
                        to.bot_id == bot_id, to.chat_id == chat_id, to.cause == cause
                    )
                )
            ).first()
            return _outbox(row) if row else None

    async def record(
        self,
        bot_id: str,
        chat_id: int,
        cause: str,
        *,
        message_id: int | None,
        text: str,
        entities: list[dict[str, Any]] | None,
        now: datetime,
        status: str = SENT,
    ) -> None:
        """What Telegram now shows for a ledger row (after a send or an edit)."""
        values: dict[str, Any] = {
            "status": status,
            "text": text,
            "entities": entities,
            "updated_at": now,
        }
        if message_id is not None:
            values["message_id"] = message_id
        async with self.db.begin() as conn:
            await conn.execute(
                telegram_outbox.update()
                .where(to.bot_id == bot_id, to.chat_id == chat_id, to.cause == cause)
                .values(**values)
            )

    async def release(self, bot_id: str, chat_id: int, cause: str) -> None:
        """Forget a claim whose send failed for good, so a later attempt may send it."""
        async with self.db.begin() as conn:
            await conn.execute(
                telegram_outbox.delete().where(
                    to.bot_id == bot_id,
                    to.chat_id == chat_id,
                    to.cause == cause,
                    to.status == SENDING,
                )
            )

    async def forget_unconfirmed(self, bot_id: str, before: datetime) -> int:
        """Drop claims whose send was in flight when a process died (`sending`, older than
        `before`), so they are sent again: at least once beats never for a prompt or alert."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                telegram_outbox.delete().where(
                    to.bot_id == bot_id, to.status == SENDING, to.updated_at < before
                )
            )
            return int(result.rowcount or 0)

    async def by_kind(self, bot_id: str, kind: str, status: str) -> list[OutboxItem]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                telegram_outbox.select()
                .where(to.bot_id == bot_id, to.kind == kind, to.status == status)
                .order_by(to.created_at)
            )
            return [_outbox(row) for row in rows]

    async def by_ref(self, bot_id: str, kind: str, ref: str) -> list[OutboxItem]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                telegram_outbox.select()
                .where(to.bot_id == bot_id, to.kind == kind, to.ref == ref)
                .order_by(to.chat_id, to.cause)
            )
            return [_outbox(row) for row in rows]

    async def close(self, bot_id: str, chat_id: int, cause: str, now: datetime) -> bool:
        """Mark a sent prompt as settled; False when another task closed it first."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                telegram_outbox.update()
                .where(
                    to.bot_id == bot_id,
                    to.chat_id == chat_id,
                    to.cause == cause,
                    to.status == SENT,
                )
                .values(status=CLOSED, updated_at=now)
            )
            return result.rowcount == 1

    # -- users and pairing --------------------------------------------------------------------

    async def users(self) -> list[TelegramUser]:
        async with self.db.connect() as conn:
            rows = await conn.execute(telegram_users.select().order_by(tu.created_at))
            return [TelegramUser(**row._mapping) for row in rows]

    async def user(self, user_id: int) -> TelegramUser | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(telegram_users.select().where(tu.user_id == user_id))).first()
            return TelegramUser(**row._mapping) if row else None

    async def put_user(
        self, user_id: int, name: str, source: str, allowed: bool, now: datetime
    ) -> TelegramUser:
        """Create the user's row or change whether it is allowed (its session stays)."""
        async with self.db.begin() as conn:
            row = (await conn.execute(telegram_users.select().where(tu.user_id == user_id))).first()
            if row is None:
                await conn.execute(
                    telegram_users.insert().values(
                        user_id=user_id,
                        name=name,
                        source=source,
                        allowed=allowed,
                        session_id=None,
                        created_at=now,
                    )
                )
            else:
                values: dict[str, Any] = {"allowed": allowed, "source": source}
                if name:
                    values["name"] = name
                await conn.execute(
                    telegram_users.update().where(tu.user_id == user_id).values(**values)
                )
        user = await self.user(user_id)
        assert user is not None
        return user

    async def set_session(self, user_id: int, session_id: str | None) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                telegram_users.update().where(tu.user_id == user_id).values(session_id=session_id)
            )

    async def pending_pairings(self, user_id: int | None, now: datetime) -> list[Pairing]:
        async with self.db.connect() as conn:
            query = telegram_pairings.select().where(tp.used_at.is_(None), tp.expires_at > now)
            if user_id is not None:
                query = query.where(tp.user_id == user_id)
            rows = await conn.execute(query.order_by(tp.created_at))
            return [Pairing(**row._mapping) for row in rows]

    async def add_pairing(self, pairing: Pairing) -> None:
        async with self.db.begin() as conn:
            await conn.execute(telegram_pairings.insert().values(**pairing.__dict__))

    async def redeem(self, code: str, now: datetime) -> Pairing | None:
        """Use a pairing code once; None when it is unknown, used or expired."""
        async with self.db.begin() as conn:
            row = (await conn.execute(telegram_pairings.select().where(tp.code == code))).first()
            if row is None:
                return None
            pairing = Pairing(**row._mapping)
            if pairing.used_at is not None or pairing.expires_at <= now:
                return None
            result = await conn.execute(
                telegram_pairings.update()
                .where(tp.code == code, tp.used_at.is_(None))
                .values(used_at=now)
            )
            return pairing if result.rowcount == 1 else None


class LeaseLostError(Exception):
    """Another node polls this bot now."""
