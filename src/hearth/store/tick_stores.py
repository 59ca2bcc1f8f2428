"""Which `TickStore` a database gets: the only place that asks which backend runs."""

from __future__ import annotations

from hearth.store.database import Database
from hearth.store.executions import ExecutionRepository
from hearth.store.schedule_ticks import TickStore
from hearth.store.schedule_ticks_sql import SqlTickStore
from hearth.store.schedule_ticks_sqlite import SqliteTickStore


def tick_store(db: Database, executions: ExecutionRepository) -> TickStore:
    if db.writer is not None:
        return SqliteTickStore(db, db.writer, executions)
    return SqlTickStore(db, executions)
