"""`hearth serve`: run the gateway in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from hearth.cli.common import DataDirOption, err_console, fail, settings_for
from hearth.datadir import read_token
from hearth.gateway.logs import configure_logging
from hearth.gateway.server import PortInUseError, RemoteBindRefusedError, check_bind_host
from hearth.store import DatabaseUrlError


def serve(
    data_dir: DataDirOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on; 0 picks a free one [default: 8420].")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="postgresql+asyncpg://USER@HOST/DB to share state between gateways "
            "[default: SQLite in the data directory].",
        ),
    ] = None,
    allow_remote: Annotated[
        bool | None,
        typer.Option(
            "--allow-remote/--loopback-only",
            help="Permit listening on a non-loopback address.",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        Literal["text", "json"] | None, typer.Option(help="Log line format [default: text].")
    ] = None,
) -> None:
    """Run the gateway until Ctrl-C or SIGTERM (then it stops cleanly and exits 0)."""
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

    def secrets() -> list[str]:
        """The token and every key the gateway knows: none of them may reach a log."""
        found: list[str] = []
        with contextlib.suppress(Exception):
            found.append(read_token(token_path))
        with contextlib.suppress(Exception):
            found += [v for n in hearth.secrets.names() if (v := hearth.secrets.get(n))]
        env_names = {p.api_key_env for p in settings.providers.values() if p.api_key_env}
        env_names |= {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
        found += [os.environ[n] for n in env_names if os.environ.get(n)]
        return found

    configure_logging(settings.log_format, settings.log_level, secrets)
    err_console.print(
        f"Hearth gateway starting (data in {settings.data_dir}; token in {token_path})",
        highlight=False,
        soft_wrap=True,
    )
    try:
        asyncio.run(hearth.serve())
    except PortInUseError as exc:
        fail(exc.strerror or str(exc))
    except OSError as exc:
        fail(exc.strerror or str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
