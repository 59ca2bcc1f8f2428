"""`hearth backup create|verify|restore`: archives of the data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from hearth.backup import (
    DATABASE,
    BackupError,
    create_backup,
    default_archive_name,
    restore_files,
    rolled_back,
    verify_backup,
)
from hearth.cli.common import DataDirOption, fail, settings_for
from hearth.store import Database

app = typer.Typer(
    help="Back up the data directory, check an archive, restore it into a new directory.",
    no_args_is_help=True,
)

PG_NOTE = (
    "the database is PostgreSQL: this archive holds the files only; back the database up with "
    "`pg_dump -Fc -f hearth.dump DBNAME` and restore it with `pg_restore -d DBNAME hearth.dump`"
)


@app.command("create")
def create(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Where to write the archive (default: hearth-backup-<UTC time>.tar.gz here).",
            show_default=False,
        ),
    ] = None,
    with_secrets: Annotated[
        bool,
        typer.Option(
            "--with-secrets",
            help="Also include stored API keys and channel tokens (secrets.json).",
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Archive the database (a consistent copy, safe while the gateway runs) and the files.

    The archive holds config.toml, workflows/, HEARTBEAT.md, the gateway token and a manifest
    with each file's SHA-256; it is created readable by you only.
    """
    settings = settings_for(data_dir)
    url = make_url(settings.resolved_database_url())
    sqlite_path = (
        Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
    )
    target = path or Path(default_archive_name())
    try:
        created = create_backup(
            settings.data_dir, target, sqlite_path=sqlite_path, with_secrets=with_secrets
        )
    except (BackupError, OSError) as exc:
        fail(str(exc))
    manifest = created.manifest
    typer.echo(
        f"wrote {created.path} ({len(manifest.files)} files, "
        f"database revision {manifest.revision or 'none'})"
    )
    if sqlite_path is None:
        typer.echo(f"note: {PG_NOTE}")
    if not with_secrets:
        typer.echo("stored API keys are not included (add --with-secrets to include them)")


@app.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(help="The archive to check.", show_default=False)],
) -> None:
    """Check the manifest, every file's SHA-256 and the database's integrity. Exit 1 if bad."""
    try:
        verified = verify_backup(path)
    except BackupError as exc:
        fail(str(exc))
    manifest = verified.manifest
    typer.echo(
        f"{path}: ok ({len(manifest.files)} files, Hearth {manifest.hearth_version}, "
        f"created {manifest.created_at}, database "
        f"{'integrity ok' if verified.integrity else 'not included (' + manifest.backend + ')'})"
    )


@app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="The archive to restore.", show_default=False)],
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            help="A new or empty directory to restore into (an existing one is refused).",
            show_default=False,
        ),
    ],
) -> None:
    """Restore an archive into a new data directory and migrate its database forward."""
    try:
        manifest = restore_files(path, data_dir)
    except (BackupError, OSError) as exc:
        fail(str(exc))
    typer.echo(
        f"restored {len(manifest.files)} files into {data_dir} "
        f"(backup of {manifest.created_at}, Hearth {manifest.hearth_version})"
    )
    db_path = data_dir / DATABASE
    if not db_path.exists():
        typer.echo(f"note: {PG_NOTE}")
        return
    revision = asyncio.run(_migrate(db_path))
    if revision != manifest.revision:
        typer.echo(f"database migrated from revision {manifest.revision} to {revision}")
    _print_rolled_back(db_path)
    typer.echo(f"start it with: hearth serve --data-dir {data_dir}")


async def _migrate(db_path: Path) -> str | None:
    settings = settings_for(db_path.parent)
    db = Database.from_url(settings.resolved_database_url())
    try:
        return await db.upgrade()
    finally:
        await db.dispose()


def _print_rolled_back(db_path: Path) -> None:
    state = rolled_back(db_path)
    typer.echo(
        "the restored state is the backup's moment; since then the live gateway may have moved on:"
    )
    typer.echo(f"  approvals pending: {len(state.pending_approvals)}")
    for item in state.pending_approvals:
        typer.echo(f"    {item['id'][:8]} {item['kind']} {item['title']}")
    typer.echo(
        f"  executions not finished: {len(state.unfinished_executions)} (they resume when the "
        "gateway starts)"
    )
    for item in state.unfinished_executions:
        typer.echo(
            f"    {item['id'][:8]} {item['workflow_id']} {item['status']} at "
            f"{item['current_step_id'] or '-'}"
        )
    typer.echo(
        f"  schedules: {len(state.schedules)} (ticks missed since the backup follow each "
        "schedule's misfire policy)"
    )
    for item in state.schedules:
        typer.echo(
            f"    {item['id'][:8]} {item['name']} next run {item['next_run'] or '-'}, "
            f"{item['run_count']} runs{'' if item['enabled'] else ', paused'}"
        )
