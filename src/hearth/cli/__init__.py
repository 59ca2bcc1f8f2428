"""The `hearth` command line (Typer). Each command group lives in its own module.

Commands are registered by name (see `hearth.cli.lazy`): a module is imported only when its
command runs, so `hearth --help` and `hearth status` do not pay for what other commands use.
Add a command by adding a line to `COMMANDS` with the first line of its help.
"""

from __future__ import annotations

import typer

from hearth import __version__
from hearth.cli.lazy import LazyCommand, LazyGroup

COMMANDS = (
    LazyCommand(
        "serve",
        "hearth.cli.serve:serve",
        "Run the gateway until Ctrl-C or SIGTERM (then it stops cleanly and exits 0).",
    ),
    LazyCommand(
        "status",
        "hearth.cli.status:status",
        "Show version, uptime, connections and database of the running gateway.",
    ),
    LazyCommand(
        "reload",
        "hearth.cli.reload:reload",
        "Re-read config.toml in the running gateway and say what changed.",
    ),
    LazyCommand(
        "init",
        "hearth.cli.heartbeat:init",
        "Write an example HEARTBEAT.md into the data directory (never over an existing one).",
    ),
    LazyCommand(
        "chat",
        "hearth.cli.chat:chat",
        "Chat with the agent. Tool calls that need approval are asked inline (y/n/always).",
    ),
    LazyCommand(
        "models",
        "hearth.cli.keys:models",
        "Show the default model and the providers the running gateway uses, and whether they "
        "answer.",
    ),
    LazyCommand(
        "approvals",
        "hearth.cli.workflow:approvals",
        "List everything waiting for a person's approval.",
    ),
    LazyCommand(
        "dashboard",
        "hearth.cli.dashboard:dashboard",
        "Print the web dashboard's address with the login token (open it with --open).",
    ),
    LazyCommand("protocol", "hearth.cli.protocol_cmd:app", "The wire protocol."),
    LazyCommand("db", "hearth.cli.db:app", "The database."),
    LazyCommand("token", "hearth.cli.token:app", "The gateway's access token."),
    LazyCommand("workflow", "hearth.cli.workflow:app", "Run and inspect workflows."),
    LazyCommand("schedule", "hearth.cli.schedule:app", "Run workflows on a schedule."),
    LazyCommand(
        "heartbeat",
        "hearth.cli.heartbeat:app",
        "The heartbeat: a model reads HEARTBEAT.md on an interval and alerts you only when "
        "something needs you.",
    ),
    LazyCommand(
        "keys", "hearth.cli.keys:app", "API keys for model providers (never stored in config.toml)."
    ),
    LazyCommand(
        "doctor",
        "hearth.cli.doctor:doctor",
        "Check config, data directory, database, gateway, model providers, workflows and the "
        "heartbeat; one line each, with the fix. Exit 1 when something failed.",
    ),
    LazyCommand(
        "telegram",
        "hearth.cli.telegram:app",
        "The Telegram bot: pair your phone, allow or revoke Telegram users.",
    ),
    LazyCommand(
        "logs",
        "hearth.cli.logs:logs",
        "Print the gateway's log file (set [logging] file in config.toml to have one).",
    ),
    LazyCommand(
        "backup",
        "hearth.cli.backup:app",
        "Back up the data directory, check an archive, restore it into a new directory.",
    ),
    LazyCommand("service", "hearth.cli.service:app", "Run the gateway as a systemd service."),
    LazyCommand(
        "mcp",
        "hearth.cli.mcp:app",
        "MCP tool servers: their state and tools, and calling a tool by hand.",
    ),
    LazyCommand(
        "notifications",
        "hearth.cli.notifications:notifications",
        "Show the notifications workflows, chats and the heartbeat sent, oldest first.",
    ),
)


class HearthGroup(LazyGroup):
    lazy_commands = COMMANDS


app = typer.Typer(
    name="hearth",
    cls=HearthGroup,
    help="Hearth: a self-hosted gateway for your personal AI agent.\n\n"
    "Start the gateway with `hearth serve`; every other command talks to it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hearth {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Hearth: a self-hosted gateway for your personal AI agent."""


def main() -> None:
    app(prog_name="hearth")
