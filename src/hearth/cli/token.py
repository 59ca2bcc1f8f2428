"""`hearth token show|rotate`."""

from __future__ import annotations

import typer

from hearth.cli.common import DataDirOption, console, fail, settings_for
from hearth.datadir import DataDirError, read_token, rotate_token

app = typer.Typer(help="The gateway's access token.", no_args_is_help=True)


@app.command("show")
def show(data_dir: DataDirOption = None) -> None:
    """Print the token (for pasting into another client)."""
    settings = settings_for(data_dir)
    try:
        typer.echo(read_token(settings.token_path))
    except DataDirError as exc:
        fail(str(exc))


@app.command("rotate")
def rotate(data_dir: DataDirOption = None) -> None:
    """Make a new token. New connections need it; open ones stay connected."""
    settings = settings_for(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    rotate_token(settings.token_path)
    console.print(f"new token written to {settings.token_path}", highlight=False)
