"""`hearth protocol schema`: print the published JSON Schema."""

from __future__ import annotations

import json

import typer

from hearth.protocol import protocol_schema

app = typer.Typer(help="The wire protocol.", no_args_is_help=True)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of every client and server message.

    The same document is served at GET /protocol.schema.json.
    """
    typer.echo(json.dumps(protocol_schema(), indent=2, sort_keys=True))
