"""`hearth keys set|list|rm` and `hearth models`: provider keys and whether providers answer."""

from __future__ import annotations

import sys
from typing import Annotated

import httpx
import typer
from rich.table import Table

from hearth.cli.common import DataDirOption, console, fail, run, settings_for
from hearth.config import Settings
from hearth.secrets import OLLAMA_URL, STANDARD_ENV, KeyLookup, SecretStore

app = typer.Typer(
    help="API keys for model providers (never stored in config.toml).", no_args_is_help=True
)


#: Secrets that are not model provider keys: the Telegram bot token.
CHANNEL_SECRETS = ("telegram",)


def _store(settings: Settings) -> SecretStore:
    return SecretStore(settings.data_dir / "secrets.json")


def _providers(settings: Settings) -> dict[str, tuple[str, str | None, str | None]]:
    """name → (kind, base_url, key variable)."""
    found: dict[str, tuple[str, str | None, str | None]] = {
        "openai": ("openai", "https://api.openai.com/v1", STANDARD_ENV["openai"]),
        "anthropic": ("anthropic", "https://api.anthropic.com/v1", STANDARD_ENV["anthropic"]),
        "ollama": ("openai", OLLAMA_URL, None),
    }
    for name, provider in settings.providers.items():
        found[name] = (provider.kind, provider.base_url, provider.api_key_env)
    return found


@app.command("set")
def set_key(
    provider: str,
    value: Annotated[
        str | None, typer.Option("--value", help="The key (default: prompt, or read stdin).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Store PROVIDER's key (openai, anthropic, a [providers.NAME] from config.toml), or the
    Telegram bot token (`hearth keys set telegram`)."""
    settings = settings_for(data_dir)
    if provider not in _providers(settings) and provider not in CHANNEL_SECRETS:
        known = ", ".join(sorted([*_providers(settings), *CHANNEL_SECRETS]))
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
    lookup = KeyLookup(_store(settings))
    table = Table("provider", "key")
    table.columns[1].overflow = "fold"
    for name, (_kind, _url, variable) in sorted(_providers(settings).items()):
        source = lookup.source(name, variable)
        table.add_row(name, source or "[dim]not set[/]")
    console.print(table)


@app.command("rm")
def remove_key(provider: str, data_dir: DataDirOption = None) -> None:
    """Forget a stored key (keys in the environment are not touched)."""
    settings = settings_for(data_dir)
    if not _store(settings).remove(provider):
        fail(f"no stored key for {provider!r}")
    console.print(f"removed the {provider} key", highlight=False)


async def _probe(kind: str, base_url: str | None, key: str | None, needs_key: bool) -> str:
    if base_url is None:
        return "no base_url configured"
    if needs_key and not key:
        return "no key (hearth keys set …)"
    headers = {}
    if key and kind == "anthropic":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    elif key:
        headers = {"Authorization": f"Bearer {key}"}
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(base_url.rstrip("/") + "/models", headers=headers)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    if response.status_code == 200:
        return "[green]answers[/]"
    return f"HTTP {response.status_code}"


def models(data_dir: DataDirOption = None) -> None:
    """List model providers, the default model, and whether each provider answers."""
    settings = settings_for(data_dir)
    lookup = KeyLookup(_store(settings))
    console.print(
        f"default model: {settings.models.default or '[yellow]not set[/] — set [models] default'}",
        highlight=False,
    )
    table = Table("provider", "kind", "base url", "key", "status")
    for name, (kind, url, variable) in sorted(_providers(settings).items()):
        needs_key = name in STANDARD_ENV or variable is not None
        key = lookup(name, variable)
        status = run(_probe(kind, url, key, needs_key))
        source = lookup.source(name, variable) or ("—" if not needs_key else "not set")
        table.add_row(name, kind, url or "", source, status)
    console.print(table)
