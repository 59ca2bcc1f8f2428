"""What every CLI command shares: the data-dir option, error printing, async entry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from hearth.client import ClientError, GatewayClient, GatewayUnavailableError
from hearth.config import ConfigError, Settings, load_settings
from hearth.datadir import DataDirError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="HEARTH_DATA_DIR",
        help="Where Hearth keeps its state (default: the platform's user data directory).",
        show_default=False,
    ),
]

#: Errors a person can act on: shown as one line, no traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DataDirError,
    ClientError,
    OSError,
    ValueError,
)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_for(data_dir: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(data_dir=data_dir, **flags)
    except ConfigError as exc:
        fail(str(exc), 2)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line on stderr."""
    try:
        return asyncio.run(coro)
    except EXPECTED_ERRORS as exc:
        fail(str(exc))


def run_unless_no_gateway(coro: Coroutine[Any, Any, T]) -> T | None:
    """Like `run`, but None when no gateway is running (for commands that can fall back)."""
    try:
        return asyncio.run(coro)
    except (DataDirError, GatewayUnavailableError):
        return None
    except EXPECTED_ERRORS as exc:
        fail(str(exc))


async def with_client(data_dir: Path | None, action: Callable[[GatewayClient], Awaitable[T]]) -> T:
    """Connect to the gateway found in the data directory, run `action`, disconnect.

    Only the data directory is needed (flag or HEARTH_DATA_DIR, else the default), not the
    settings: a config.toml with a mistake must not stop a person from asking the running
    gateway, or from telling it to reload.
    """
    client = GatewayClient.from_data_dir(data_dir, client_name="hearth-cli")
    await client.connect()
    try:
        return await action(client)
    finally:
        await client.close()
