"""`hearth db upgrade`: apply migrations without starting the gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from hearth.cli.common import DataDirOption, console, run, settings_for
from hearth.config import Settings
from hearth.store import Database
from hearth.store.migrate import head_revision

app = typer.Typer(help="The database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    data_dir: DataDirOption = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The database to migrate (default: database_url in config.toml, else SQLite "
            "in the data directory)."
        ),
    ] = None,
) -> None:
    """Apply every pending migration (the gateway also does this when it starts)."""
    settings = settings_for(data_dir, database_url=database_url)
    revision = run(_upgrade(settings))
    console.print(f"database at revision {revision} (head {head_revision()})", highlight=False)


async def _upgrade(settings: Settings) -> str | None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.from_url(settings.resolved_database_url())
    try:
        return await db.upgrade()
    finally:
        await db.dispose()
