"""Which `TickStore` a database gets: the only place that asks which backend runs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from hearth.store.database import Database
from hearth.store.executions import ExecutionRepository
from hearth.store.schedule_ticks import TickStore
from hearth.store.schedule_ticks_sql import SqlTickStore
from hearth.store.schedule_ticks_sqlite import SqliteTickStore

#: Connections of the scheduler's own on PostgreSQL: one claiming pass and one results flush
#: at a time, plus one for a tick started inside its transaction.
OWN_POOL = 3


def tick_store(db: Database, executions: ExecutionRepository) -> TickStore:
    if db.writer is not None:
        return SqliteTickStore(db, db.writer, executions)
    if db.backend == "postgresql":
        engine = create_async_engine(
            db.engine.url, pool_size=OWN_POOL, max_overflow=0, pool_pre_ping=True
        )
        return SqlTickStore(db, executions, engine)
    return SqlTickStore(db, executions)
