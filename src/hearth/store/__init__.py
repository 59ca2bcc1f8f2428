"""Storage: tables, engine set-up for SQLite and PostgreSQL, migrations, repositories."""

from hearth.store.database import Database
from hearth.store.engine import Backend, DatabaseUrlError, backend_of

__all__ = ["Backend", "Database", "DatabaseUrlError", "backend_of"]
