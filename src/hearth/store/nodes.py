"""Registry of live gateway processes sharing one database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from hearth.store.database import Database
from hearth.store.tables import gateway_nodes

#: How often a node renews `seen_at`; a node unseen for three intervals counts as gone.
NODE_HEARTBEAT_INTERVAL = timedelta(seconds=10)


@dataclass(frozen=True)
class NodeRecord:
    node_id: str
    hostname: str
    pid: int
    url: str
    version: str
    started_at: datetime
    seen_at: datetime


class NodeRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def register(self, record: NodeRecord) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                gateway_nodes.delete().where(gateway_nodes.c.node_id == record.node_id)
            )
            await conn.execute(gateway_nodes.insert().values(**record.__dict__))

    async def touch(self, node_id: str, now: datetime | None = None) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                gateway_nodes.update()
                .where(gateway_nodes.c.node_id == node_id)
                .values(seen_at=now or datetime.now(UTC))
            )

    async def remove(self, node_id: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(gateway_nodes.delete().where(gateway_nodes.c.node_id == node_id))

    async def live(self, now: datetime | None = None) -> list[NodeRecord]:
        """Nodes seen within three heartbeat intervals, oldest first."""
        cutoff = (now or datetime.now(UTC)) - 3 * NODE_HEARTBEAT_INTERVAL
        async with self._db.connect() as conn:
            rows = await conn.execute(
                sa.select(gateway_nodes)
                .where(gateway_nodes.c.seen_at >= cutoff)
                .order_by(gateway_nodes.c.started_at)
            )
            return [NodeRecord(**row._mapping) for row in rows]
