"""What every CLI command shares: the data-dir option, error printing, async entry.

Imported by every command, so it imports only Typer and Rich at module level; the client and
the settings are imported when a command uses them (see `hearth.cli.lazy` for why start-up
time matters here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from hearth.datadir import DataDirError, default_data_dir, pid_alive, read_runtime

if TYPE_CHECKING:
    from hearth.client import GatewayClient
    from hearth.config import Settings

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


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors a person can act on: shown as one line, no traceback."""
    from hearth.client import ClientError
    from hearth.config import ConfigError

    return (ConfigError, DataDirError, ClientError, OSError, ValueError)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_for(data_dir: Path | None, **flags: Any) -> Settings:
    from hearth.config import ConfigError, load_settings

    try:
        return load_settings(data_dir=data_dir, **flags)
    except ConfigError as exc:
        fail(str(exc), 2)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line on stderr."""
    try:
        return asyncio.run(coro)
    except expected_errors() as exc:
        fail(str(exc))


def run_unless_no_gateway(coro: Coroutine[Any, Any, T]) -> T | None:
    """Like `run`, but None when no gateway is running (for commands that can fall back)."""
    from hearth.client import GatewayUnavailableError

    try:
        return asyncio.run(coro)
    except (DataDirError, GatewayUnavailableError):
        return None
    except expected_errors() as exc:
        fail(str(exc))


def gateway_data_dir(data_dir: Path | None) -> Path:
    """Where to look for the running gateway.

    `--data-dir` or HEARTH_DATA_DIR when given; else the default data directory, unless no
    gateway runs there and exactly one other gateway of this user does (one started with
    `--data-dir` in another terminal, found by its pointer): then that one, with a note.
    """
    if data_dir is not None:
        return data_dir
    default = default_data_dir()
    try:
        if pid_alive(read_runtime(default / "runtime.json").pid):
            return default
    except DataDirError:
        pass
    from hearth.pointers import live_gateways

    others = [p for p in live_gateways() if p.data_dir != default.resolve()]
    if len(others) == 1:
        found = others[0].data_dir
        err_console.print(
            f"(using the gateway in {found}, pid {others[0].pid}: it was started with "
            f"--data-dir; set HEARTH_DATA_DIR={found} to choose it yourself)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return found
    if len(others) > 1:
        listed = ", ".join(f"{p.data_dir} (pid {p.pid})" for p in others)
        fail(
            f"no gateway runs in {default}, and several others do: {listed}; choose one with "
            "--data-dir or HEARTH_DATA_DIR"
        )
    return default


async def with_client(data_dir: Path | None, action: Callable[[GatewayClient], Awaitable[T]]) -> T:
    """Connect to the gateway found in the data directory, run `action`, disconnect.

    Only the data directory is needed (flag or HEARTH_DATA_DIR, else the default), not the
    settings: a config.toml with a mistake must not stop a person from asking the running
    gateway, or from telling it to reload.
    """
    from hearth.client import GatewayClient

    client = GatewayClient.from_data_dir(gateway_data_dir(data_dir), client_name="hearth-cli")
    await client.connect()
    try:
        return await action(client)
    finally:
        await client.close()
