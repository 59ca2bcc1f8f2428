"""`hearth dashboard`: the address of the web dashboard, with the token to log in."""

from __future__ import annotations

import webbrowser
from typing import Annotated
from urllib.parse import quote

import typer

from hearth.cli.common import DataDirOption, fail, gateway_data_dir
from hearth.datadir import DataDirError, pid_alive, read_runtime, read_token


def dashboard_url(base: str, token: str) -> str:
    """The token rides in the fragment: browsers never send it to a server or in a Referer,
    and the page moves it to sessionStorage and clears it from the address bar at once."""
    return f"{base.rstrip('/')}/#token={quote(token, safe='')}"


def dashboard(
    data_dir: DataDirOption = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Also open it in the default web browser.")
    ] = False,
) -> None:
    """Print the web dashboard's address with the login token (open it with --open)."""
    where = gateway_data_dir(data_dir)
    try:
        runtime = read_runtime(where / "runtime.json")
        if not pid_alive(runtime.pid):
            fail(f"the gateway in {where} is not running: start it with `hearth serve`")
        token = read_token(where / "gateway.token")
    except DataDirError as exc:
        fail(str(exc))
    url = dashboard_url(runtime.url, token)
    typer.echo(url)
    if open_browser and not webbrowser.open(url):
        fail("could not open a web browser here: copy the address above into one", 1)
