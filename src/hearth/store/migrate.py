"""Alembic migrations, run programmatically on an existing async connection.

The gateway upgrades at start-up and `hearth db upgrade` does the same on demand. On PostgreSQL
the upgrade holds an advisory lock, so several nodes starting together migrate once, in turn.

Alembic is imported only when there is something to migrate (or a caller asks for revisions):
on the usual start-up the database is already at the head, which one query and a look at the
migration files establish, and importing Alembic would cost the gateway about a tenth of its
start-up time and several MB of memory for nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Arbitrary constant that identifies Hearth's migration lock among other advisory locks.
ADVISORY_LOCK_KEY = 0x4EA27


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']\s*$", re.MULTILINE)
_DOWN = re.compile(
    r"^down_revision\s*(?::[^=]*)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE
)


def _head_from_files() -> str | None:
    """The head revision read straight from the migration files; None when unsure.

    Only a plain chain (each file one `revision = "X"` and one `down_revision = "Y"` or None)
    is understood; anything else (a merge, an unusual spelling) answers None, and the caller
    asks Alembic.
    """
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(text), _DOWN.findall(text)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        if down[0]:
            downs.add(down[0])
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: sa.Connection) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


def _current(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine) -> str | None:
    """Apply every pending migration; returns the revision now current."""
    head = _head_from_files()
    if head is not None:
        async with engine.connect() as conn:
            if await conn.run_sync(_stored_revision) == head:
                return head
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
