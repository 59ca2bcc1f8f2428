"""Turning "provider:model" strings into pydantic-ai models.

Built-in prefixes: `openai:` and `anthropic:` read their standard key variables
(OPENAI_API_KEY, ANTHROPIC_API_KEY); `ollama:` is OpenAI-compatible on localhost:11434 with no
key. `[providers.NAME]` in config.toml adds OpenAI-compatible (or Anthropic) endpoints; their key,
if any, comes from the environment variable the provider names, never from the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from hearth.config import ProviderSettings
from hearth.errors import DomainError
from hearth.models.capabilities import Capabilities
from hearth.secrets import OLLAMA_URL

if TYPE_CHECKING:
    from pydantic_ai.models import Model

HOW_TO_CONFIGURE = (
    'set `[models] default = "openai:gpt-4o-mini"` in config.toml (with OPENAI_API_KEY in the '
    'environment), or "ollama:llama3.2" for a local Ollama, or add '
    '`[providers.NAME] kind = "openai", base_url = "http://HOST:PORT/v1"` and use "NAME:MODEL"'
)


def _environment_keys(provider: str, env_var: str | None) -> str | None:
    variable = env_var or {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}.get(
        provider
    )
    return os.environ.get(variable) if variable else None


StructuredMode = Literal["auto", "tool", "native", "prompted"]


# pydantic-ai and the provider SDKs take seconds to import; only a process that builds a model
# pays for them (the CLI and a gateway that never calls a model would otherwise wait for them).
# That is why the imports below sit inside the functions that need them.


def _quiet_pydantic_ai() -> None:
    """Turn off pydantic-ai's first-run banner (a Logfire advert printed to stderr on the first
    agent run when stderr is a terminal or a coding agent runs the process): the gateway owns
    its output. `BANNER_ENABLED` is the library's documented switch for that."""
    import pydantic_ai

    pydantic_ai.BANNER_ENABLED = False


def _openai(model_name: str, *, api_key: str, base_url: str | None = None) -> Model:
    import httpx2
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from hearth.models.wire import CompatibleTransport

    _quiet_pydantic_ai()
    # Our transport keeps `content: null` and, when asked, `tool_choice` off the wire.
    client = httpx2.AsyncClient(
        transport=CompatibleTransport(), timeout=httpx2.Timeout(600, connect=5)
    )
    provider = OpenAIProvider(base_url=base_url, api_key=api_key, http_client=client)
    return OpenAIChatModel(model_name, provider=provider)


def _anthropic(model_name: str, *, api_key: str | None, base_url: str | None = None) -> Model:
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    _quiet_pydantic_ai()
    return AnthropicModel(
        model_name, provider=AnthropicProvider(api_key=api_key, base_url=base_url)
    )


def _degrading(name: str, model: Model, capabilities: Capabilities) -> Model:
    from hearth.models.degrade import DegradingModel

    return DegradingModel(model, capabilities, name)


class ModelNotConfiguredError(DomainError):
    """No usable model: the message says how to configure one."""

    code = "MODEL_NOT_CONFIGURED"


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    model: Model
    structured_output: StructuredMode
    #: Per request to the model server (`[models] timeout_s`).
    timeout_s: float = 120.0
    #: What this provider:model handles, learned per process (shared by every request to it).
    capabilities: Capabilities = field(default_factory=Capabilities)


class ModelFactory:
    def __init__(
        self,
        default: str | None,
        providers: Mapping[str, ProviderSettings],
        keys: Callable[[str, str | None], str | None] | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.default = default
        self.timeout_s = timeout_s
        self.providers = dict(providers)
        self._keys = keys or _environment_keys
        self._cache: dict[str, ResolvedModel] = {}

    def resolve(self, name: str | None = None) -> ResolvedModel:
        """The model for `name` (default: `[models] default`), built once and then reused.

        Reuse matters: each provider owns an HTTP client with open connections.
        """
        wanted = name or self.default
        if wanted and wanted in self._cache:
            return self._cache[wanted]
        resolved = replace(self._build(wanted), timeout_s=self.timeout_s)
        self._cache[resolved.name] = resolved
        return resolved

    async def aclose(self) -> None:
        """Close the HTTP clients of every model built so far."""
        cached, self._cache = list(self._cache.values()), {}
        for resolved in cached:
            model: Any = getattr(resolved.model, "wrapped", resolved.model)
            client = getattr(model, "client", None)
            close = getattr(client, "close", None)
            if close is not None:
                await close()

    def _build(self, wanted: str | None) -> ResolvedModel:
        if not wanted:
            raise ModelNotConfiguredError(f"no model is configured: {HOW_TO_CONFIGURE}")
        prefix, sep, model_name = wanted.partition(":")
        if not sep or not model_name:
            raise ModelNotConfiguredError(
                f"model {wanted!r} is not of the form PROVIDER:MODEL; {HOW_TO_CONFIGURE}"
            )
        if prefix in self.providers:
            return self._configured(wanted, self.providers[prefix], model_name)
        if prefix == "openai":
            key = self._keys("openai", None)
            if not key:
                raise ModelNotConfiguredError(
                    f"model {wanted!r} needs OPENAI_API_KEY in the environment (or `hearth keys "
                    "set openai`)"
                )
            return _resolved(wanted, _openai(model_name, api_key=key), "auto")
        if prefix == "anthropic":
            key = self._keys("anthropic", None)
            if not key:
                raise ModelNotConfiguredError(
                    f"model {wanted!r} needs ANTHROPIC_API_KEY in the environment (or `hearth "
                    "keys set anthropic`)"
                )
            return _resolved(
                wanted, _anthropic(model_name, api_key=key), "auto", can_omit_choice=False
            )
        if prefix == "ollama":
            model = _openai(model_name, api_key="ollama", base_url=OLLAMA_URL)
            return _resolved(wanted, model, "auto")
        known = ", ".join(sorted({"openai", "anthropic", "ollama", *self.providers}))
        raise ModelNotConfiguredError(
            f"unknown provider {prefix!r} in model {wanted!r} (known: {known}); {HOW_TO_CONFIGURE}"
        )

    def _configured(
        self, wanted: str, settings: ProviderSettings, model_name: str
    ) -> ResolvedModel:
        provider_name = wanted.partition(":")[0]
        key = self._keys(provider_name, settings.api_key_env)
        if settings.api_key_env and not key:
            raise ModelNotConfiguredError(
                f"model {wanted!r} needs the environment variable {settings.api_key_env} "
                f"(or `hearth keys set {provider_name}`)"
            )
        if settings.kind == "anthropic":
            model = _anthropic(model_name, api_key=key, base_url=settings.base_url)
            return _resolved(
                wanted,
                model,
                settings.structured_output,
                tools=settings.tools,
                can_omit_choice=False,
            )
        # OpenAI-compatible servers that take no key still need a non-empty string.
        model = _openai(model_name, api_key=key or "not-needed", base_url=settings.base_url)
        return _resolved(wanted, model, settings.structured_output, tools=settings.tools)


def _resolved(
    name: str,
    model: Model,
    structured: StructuredMode,
    *,
    tools: bool | None = None,
    can_omit_choice: bool = True,
) -> ResolvedModel:
    capabilities = Capabilities(tools_override=tools, can_omit_choice=can_omit_choice)
    return ResolvedModel(
        name, _degrading(name, model, capabilities), structured, 120.0, capabilities
    )
