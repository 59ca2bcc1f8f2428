"""Which `ExecutionRepository` a database gets: the one place that knows the backends.

The engine and the scheduler hold the interface (`store.executions.ExecutionRepository`); the
hot writes behind it are the SQLite writer's group commit, asyncpg's grouped statements, or
plain SQLAlchemy (an in-memory SQLite database, used by some tests).
"""

from __future__ import annotations

from hearth.store.database import Database
from hearth.store.executions import ExecutionRepository
from hearth.store.executions_postgres import PostgresExecutions
from hearth.store.executions_sqlite import SqliteExecutions


def execution_repository(db: Database) -> ExecutionRepository:
    if db.writer is not None:
        return SqliteExecutions(db, db.writer)
    if db.pg_writer is not None:
        return PostgresExecutions(db, db.pg_writer)
    return ExecutionRepository(db)
