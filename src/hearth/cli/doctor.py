"""`hearth doctor`: check the installation and say how to fix what is wrong."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

import typer

from hearth.cli.common import DataDirOption
from hearth.doctor import run_checks

LABEL = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def doctor(
    data_dir: DataDirOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per check, for scripts.")
    ] = False,
) -> None:
    """Check config, data directory, database, gateway, model providers, workflows and the
    heartbeat; one line each, with the fix. Exit 1 when something failed."""
    # The checks report every problem themselves; library warnings (an invalid workflow logged
    # by the catalog) would only repeat them out of line.
    logging.disable(logging.WARNING)
    checks = asyncio.run(run_checks(data_dir))
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        typer.echo(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}))
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            line = f"{LABEL[check.status]}  {check.name.ljust(width)}  {check.detail}"
            if check.fix and check.status != "ok":
                line += f"\n      {' ' * width}  fix: {check.fix}"
            typer.echo(line)
    raise typer.Exit(1 if failed else 0)
