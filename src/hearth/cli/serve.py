"""`hearth serve`: run the gateway in the foreground."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from hearth.cli.common import DataDirOption, err_console, fail, settings_for
from hearth.datadir import PRIVATE_UMASK, DataDirBusyError
from hearth.gateway.logs import RotatingFile, configure_logging
from hearth.gateway.server import PortInUseError, RemoteBindRefusedError, check_bind_host
from hearth.malloc import limit_malloc_arenas
from hearth.store import DatabaseUrlError


def serve(
    data_dir: DataDirOption = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default: host in config.toml, else 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on; 0 picks a free one (default: port in config.toml, else 8420)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="postgresql+asyncpg://USER@HOST/DB to share state between gateways "
            "(default: SQLite in the data directory).",
        ),
    ] = None,
    allow_remote: Annotated[
        bool | None,
        typer.Option(
            "--allow-remote/--loopback-only",
            help="Permit listening on a non-loopback address (default: loopback only).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        Literal["text", "json"] | None,
        typer.Option(help="Log line format (default: log_format in config.toml, else text)."),
    ] = None,
) -> None:
    """Run the gateway until Ctrl-C or SIGTERM (then it stops cleanly and exits 0)."""
    # Ctrl-C at any moment, even while still importing or starting, is a request to stop, not
    # an error: exit 0 quietly (no "Aborted!", no make error under `make run`).
    try:
        _serve(data_dir, host, port, database_url, allow_remote, log_format)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _serve(
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    database_url: str | None,
    allow_remote: bool | None,
    log_format: Literal["text", "json"] | None,
) -> None:
    # Before any thread exists: the gateway's threads share two malloc arenas (hearth.malloc).
    limit_malloc_arenas()
    # Everything the gateway creates (SQLite files, workspace files, tool output) is private.
    os.umask(PRIVATE_UMASK)
    settings = settings_for(
        data_dir,
        host=host,
        port=port,
        database_url=database_url,
        allow_remote=allow_remote,
        log_format=log_format,
    )
    # Imported here so that other commands start without loading every service (and the
    # model SDKs) they never use.
    from hearth.app import Hearth

    try:
        check_bind_host(settings.host, settings.allow_remote)
        hearth = Hearth(settings)
    except (RemoteBindRefusedError, DatabaseUrlError) as exc:
        fail(str(exc), 2)
    token_path: Path = settings.token_path
    log_file = settings.log_file
    configure_logging(
        settings.log_format,
        settings.log_level,
        hearth.secret_values,
        file=RotatingFile(log_file, settings.logging.max_bytes, settings.logging.backups)
        if log_file is not None
        else None,
    )
    err_console.print(
        f"Hearth gateway starting (data in {settings.data_dir}; token in {token_path})",
        highlight=False,
        soft_wrap=True,
    )
    try:
        asyncio.run(hearth.serve())
    except DataDirBusyError as exc:
        fail(str(exc), 2)
    except PortInUseError as exc:
        fail(exc.strerror or str(exc))
    except OSError as exc:
        fail(exc.strerror or str(exc))
