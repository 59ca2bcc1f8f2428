"""`hearth keys set|list|rm` and `hearth models`: provider keys and whether providers answer."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import (
    DataDirOption,
    console,
    err_console,
    fail,
    run,
    run_unless_no_gateway,
    settings_for,
    with_client,
)
from hearth.client import GatewayClient
from hearth.config import Settings
from hearth.protocol.messages.config import ModelsList, ModelsListResult, ProviderInfo
from hearth.provider_status import known_providers, probe_all
from hearth.secrets import KeyLookup, SecretStore

app = typer.Typer(
    help="API keys for model providers (never stored in config.toml).", no_args_is_help=True
)


#: Secrets that are not model provider keys: the Telegram bot token.
CHANNEL_SECRETS = ("telegram",)


def _store(settings: Settings) -> SecretStore:
    return SecretStore(settings.data_dir / "secrets.json")


def _provider_names(settings: Settings) -> list[str]:
    return [p.name for p in known_providers(settings.providers, KeyLookup(None))]


@app.command("set")
def set_key(
    provider: str,
    value: Annotated[
        str | None, typer.Option("--value", help="The key (default: prompt, or read stdin).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Store PROVIDER's key (openai, anthropic, a [providers.NAME] from config.toml), the
    Telegram bot token (`hearth keys set telegram`), or a secret an MCP server's settings name
    as `secret:NAME`."""
    settings = settings_for(data_dir)
    allowed = [*_provider_names(settings), *CHANNEL_SECRETS, *settings.mcp.secret_names()]
    if provider not in allowed:
        known = ", ".join(allowed)
        fail(f"unknown provider {provider!r} (known: {known})", 2)
    if value is None:
        if sys.stdin.isatty():
            value = typer.prompt(f"{provider} API key", hide_input=True)
        else:
            value = sys.stdin.readline().strip()
    if not value:
        fail("no key given: pass --value, type it at the prompt, or pipe it on stdin", 2)
    store = _store(settings)
    store.set(provider, value)
    console.print(f"stored the {provider} key in {store.where}", highlight=False)


@app.command("list")
def list_keys(data_dir: DataDirOption = None) -> None:
    """Which providers have a key, and where it comes from (never the key itself)."""
    settings = settings_for(data_dir)
    table = Table("provider", "key")
    table.columns[1].overflow = "fold"
    for provider in known_providers(settings.providers, KeyLookup(_store(settings))):
        table.add_row(escape(provider.name), escape(provider.key_source or "") or "[dim]not set[/]")
    console.print(table)


@app.command("rm")
def remove_key(provider: str, data_dir: DataDirOption = None) -> None:
    """Forget a stored key (keys in the environment are not touched)."""
    settings = settings_for(data_dir)
    if not _store(settings).remove(provider):
        fail(f"no stored key for {provider!r}")
    console.print(f"removed the {provider} key", highlight=False)


def _status_cell(status: str | None) -> str:
    if status == "answers":
        return "[green]answers[/]"
    return escape(status or "")


def models(data_dir: DataDirOption = None) -> None:
    """Show the default model and the providers the running gateway uses, and whether they answer.

    Asks the running gateway (which may have reloaded config.toml since it started); when no
    gateway runs, reads config.toml and says so.
    """

    async def ask(client: GatewayClient) -> ModelsListResult:
        return await client.request(ModelsList(id=client.next_id(), probe=True), ModelsListResult)

    listed = run_unless_no_gateway(with_client(data_dir, ask))
    if listed is None:
        settings = settings_for(data_dir)
        listed = run(_from_file(settings))
        err_console.print(
            f"(no gateway is running: this is what {settings.config_path} says)",
            highlight=False,
            markup=False,
        )
    default = (
        escape(listed.default)
        if listed.default
        else "[yellow]not set[/] (set default in the \\[models] table of config.toml)"
    )
    console.print(f"default model: {default}", highlight=False)
    table = Table("provider", "kind", "base url", "key", "status")
    for p in listed.providers:
        key = p.key or ("not set" if p.needs_key else "—")
        table.add_row(
            escape(p.name), p.kind, escape(p.base_url or ""), escape(key), _status_cell(p.status)
        )
    console.print(table)


async def _from_file(settings: Settings) -> ModelsListResult:
    keys = KeyLookup(_store(settings))
    providers = await probe_all(known_providers(settings.providers, keys), keys)
    return ModelsListResult(
        id="local",
        default=settings.models.default,
        providers=[
            ProviderInfo(
                name=p.name,
                kind=p.kind,
                base_url=p.base_url,
                key=p.key_source,
                needs_key=p.needs_key,
                status=p.status,
            )
            for p in providers
        ],
    )
