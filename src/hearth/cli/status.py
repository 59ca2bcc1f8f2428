"""`hearth status`: ask the running gateway how it is."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import DataDirOption, console, run, with_client
from hearth.client import GatewayClient
from hearth.protocol import GatewayStatus, GatewayStatusResult


def status(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw reply.")] = False,
) -> None:
    """Show version, uptime, connections and database of the running gateway."""

    async def ask(client: GatewayClient) -> tuple[GatewayStatusResult, str]:
        reply = await client.request(GatewayStatus(id=client.next_id()), GatewayStatusResult)
        return reply, client.url

    result, url = run(with_client(data_dir, ask))
    if as_json:
        console.print_json(json.dumps(result.to_wire()))
        return
    table = Table(show_header=False, box=None)
    table.add_row("gateway", f"running, version {result.version}, protocol {result.protocol}")
    table.add_row("url", url)
    table.add_row("uptime", f"{result.uptime_s:.0f} s")
    table.add_row("connections", str(result.connections))
    table.add_row("database", result.database)
    if result.nodes is not None:
        table.add_row("nodes", str(result.nodes))
    if result.telegram is not None:
        telegram = result.telegram.state + (
            f" — {result.telegram.problem}" if result.telegram.problem else ""
        )
        table.add_row("telegram", escape(telegram))
    console.print(table)
