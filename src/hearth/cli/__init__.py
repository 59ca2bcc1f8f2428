"""The `hearth` command line (Typer). Each command group lives in its own module."""

from __future__ import annotations

import typer

from hearth import __version__
from hearth.cli import db, heartbeat, keys, protocol_cmd, schedule, token, workflow
from hearth.cli.chat import chat
from hearth.cli.notifications import notifications
from hearth.cli.serve import serve
from hearth.cli.status import status

app = typer.Typer(
    name="hearth",
    help="Hearth: a self-hosted gateway for your personal AI agent.\n\n"
    "Start the gateway with `hearth serve`; every other command talks to it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve)
app.command("status")(status)
app.add_typer(protocol_cmd.app, name="protocol")
app.add_typer(db.app, name="db")
app.add_typer(token.app, name="token")
app.add_typer(workflow.app, name="workflow")
app.add_typer(schedule.app, name="schedule")
app.add_typer(heartbeat.app, name="heartbeat")
app.command("init")(heartbeat.init)
app.command("chat")(chat)
app.add_typer(keys.app, name="keys")
app.command("models")(keys.models)
app.command("approvals")(workflow.approvals)
app.command("notifications")(notifications)


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
    app()
