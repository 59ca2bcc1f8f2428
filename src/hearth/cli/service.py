"""`hearth service install|uninstall|status`: the gateway as a systemd service."""

from __future__ import annotations

from typing import Annotated

import typer

from hearth.cli.common import DataDirOption, fail, settings_for
from hearth.service import (
    UNIT_NAME,
    ServiceError,
    ServicePlan,
    foreground_command,
    plan,
    render_unit,
    systemd_available,
)
from hearth.service import install as install_unit
from hearth.service import status as unit_status
from hearth.service import uninstall as uninstall_unit

app = typer.Typer(help="Run the gateway as a systemd service.", no_args_is_help=True)

UserOption = Annotated[
    bool,
    typer.Option(
        "--user/--system",
        help="A user unit (runs as you, the default) or a system unit (needs root).",
    ),
]


def _plan(data_dir: DataDirOption, user: bool) -> ServicePlan:
    return plan(settings_for(data_dir).data_dir, user=user)


def _no_systemd(p: ServicePlan, reason: str) -> None:
    typer.echo(f"cannot install a service here: {reason}.", err=True)
    typer.echo(
        "Run the gateway under your own supervisor (runit, s6, supervisord, a container) with:",
        err=True,
    )
    typer.echo(f"  {foreground_command(p)}", err=True)
    typer.echo("It stops cleanly on SIGTERM and may be restarted at any time.", err=True)
    raise typer.Exit(1)


@app.command("install")
def install(
    user: UserOption = True,
    data_dir: DataDirOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the unit and where it would go; change nothing."),
    ] = False,
) -> None:
    """Write the unit, enable it and start the gateway now and at every boot or login."""
    p = _plan(data_dir, user)
    if dry_run:
        typer.echo(f"# {p.unit_path}")
        typer.echo(render_unit(p), nl=False)
        return
    reason = systemd_available(p)
    if reason is not None:
        _no_systemd(p, reason)
    try:
        install_unit(p)
    except (ServiceError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"installed {p.unit_path} and started {UNIT_NAME}")
    typer.echo(f"follow its logs: {p.journal_hint()}")
    typer.echo(f"keys and other secrets as environment variables go in {p.env_file} (mode 0600)")
    if p.user:
        typer.echo("to keep it running after you log out: loginctl enable-linger $USER")


@app.command("uninstall")
def uninstall(user: UserOption = True, data_dir: DataDirOption = None) -> None:
    """Stop and disable the service and remove its unit (the data directory is kept)."""
    p = _plan(data_dir, user)
    reason = systemd_available(p)
    if reason is not None:
        fail(f"cannot reach systemd: {reason}")
    try:
        removed = uninstall_unit(p)
    except (ServiceError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"removed {p.unit_path}" if removed else f"no unit at {p.unit_path}; nothing to do")


@app.command("status")
def status(user: UserOption = True, data_dir: DataDirOption = None) -> None:
    """Whether the unit is installed and what systemd says about it."""
    p = _plan(data_dir, user)
    if not p.unit_path.exists():
        typer.echo(f"not installed (no {p.unit_path}); install it with: hearth service install")
        raise typer.Exit(3)
    reason = systemd_available(p)
    if reason is not None:
        fail(f"{p.unit_path} exists but systemd cannot be reached: {reason}")
    code, text = unit_status(p)
    typer.echo(text.rstrip())
    raise typer.Exit(code)
