"""Start-up skips Alembic when the database is already at the head the migration files name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hearth.store import Database
from hearth.store.migrate import _head_from_files, head_revision
from tests.support.databases import sqlite_url


def test_head_read_from_the_files_is_alembics_head() -> None:
    assert _head_from_files() == head_revision()


async def test_upgrade_of_a_current_database_returns_the_head(tmp_path: Path) -> None:
    db = Database.from_url(sqlite_url(tmp_path))
    try:
        assert await db.upgrade() == head_revision()
        assert await db.upgrade() == head_revision()
    finally:
        await db.dispose()


def test_upgrading_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    code = (
        "import asyncio, sys\n"
        "from hearth.store import Database\n"
        f"db = Database.from_url({url!r})\n"
        "async def main():\n"
        "    print(await db.upgrade())\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.split() == [str(head_revision()), "True"]  # it had to migrate
    second = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert second.stdout.split() == [str(head_revision()), "False"]
