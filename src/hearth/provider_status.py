"""The model providers a configuration knows, where their keys come from, whether they answer.

Shared by the gateway (`models.list`, which describes what the running gateway uses) and by
`hearth models` when no gateway runs (then it describes config.toml).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from hearth.config import ProviderSettings
from hearth.secrets import OLLAMA_URL, STANDARD_ENV, KeyLookup

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    kind: Literal["openai", "anthropic"]
    base_url: str | None
    key_variable: str | None
    #: Where the key comes from ("environment (OPENAI_API_KEY)", a file…); None when none.
    key_source: str | None
    needs_key: bool
    #: "answers", "HTTP 401", "unreachable (ConnectError)", … once probed.
    status: str | None = None


def known_providers(
    providers: Mapping[str, ProviderSettings], keys: KeyLookup
) -> list[ProviderStatus]:
    """The built-in providers plus `[providers.NAME]`, sorted by name."""
    found: dict[str, tuple[Literal["openai", "anthropic"], str | None, str | None]] = {
        "openai": ("openai", "https://api.openai.com/v1", STANDARD_ENV["openai"]),
        "anthropic": ("anthropic", "https://api.anthropic.com/v1", STANDARD_ENV["anthropic"]),
        "ollama": ("openai", OLLAMA_URL, None),
    }
    for name, provider in providers.items():
        found[name] = (provider.kind, provider.base_url, provider.api_key_env)
    return [
        ProviderStatus(
            name=name,
            kind=kind,
            base_url=url,
            key_variable=variable,
            key_source=keys.source(name, variable),
            needs_key=name in STANDARD_ENV or variable is not None,
        )
        for name, (kind, url, variable) in sorted(found.items())
    ]


async def probe(provider: ProviderStatus, keys: KeyLookup) -> ProviderStatus:
    """Ask the provider's `/models`; the answer goes into `status`."""
    return replace(
        provider, status=await _probe(provider, keys(provider.name, provider.key_variable))
    )


async def probe_all(providers: list[ProviderStatus], keys: KeyLookup) -> list[ProviderStatus]:
    return list(await asyncio.gather(*(probe(p, keys) for p in providers)))


async def _probe(provider: ProviderStatus, key: str | None) -> str:
    if provider.base_url is None:
        return "no base_url configured"
    if provider.needs_key and not key:
        return f"no key (hearth keys set {provider.name})"
    listed, problem = await listed_models(provider, key)
    return "answers" if listed is not None else problem


async def listed_models(provider: ProviderStatus, key: str | None) -> tuple[list[str] | None, str]:
    """The model ids the provider's `GET /models` lists (empty when it lists none it can
    parse), or None and what went wrong."""
    if provider.base_url is None:
        return None, "no base_url configured"
    headers = {}
    if key and provider.kind == "anthropic":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    elif key:
        headers = {"Authorization": f"Bearer {key}"}
    import httpx  # only a probe needs it; the gateway's start should not pay ~5 MB for it

    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
            response = await client.get(provider.base_url.rstrip("/") + "/models", headers=headers)
    except httpx.HTTPError as exc:
        return None, f"unreachable ({type(exc).__name__})"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    try:
        data = response.json().get("data", [])
    except (ValueError, AttributeError):
        return [], "answers"
    if not isinstance(data, list):
        return [], "answers"
    return [str(item.get("id")) for item in data if isinstance(item, dict)], "answers"
