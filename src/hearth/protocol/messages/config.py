"""The running gateway's configuration: reload config.toml, and the models it is set up with.

Clients ask the gateway rather than reading config.toml themselves, because the file may have
changed since the gateway last read it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Reply, WireModel


class ConfigReload(ClientMessage):
    """Re-read config.toml now (the gateway also does on SIGHUP and when the file changes)."""

    type: Literal["config.reload"] = "config.reload"


class ConfigReloadResult(Reply):
    type: Literal["config.reload.result"] = "config.reload.result"
    path: str = Field(description="The config.toml that was read.")
    applied: list[str] = Field(description="Changed settings now in effect (dotted keys).")
    restart_required: list[str] = Field(
        description="Changed settings that keep their running value until a restart."
    )
    message: str = Field(description="One line saying what happened.")


class ModelsList(ClientMessage):
    """The default model and the providers the gateway is configured with."""

    type: Literal["models.list"] = "models.list"
    probe: bool = Field(
        default=False, description="Also ask each provider's /models whether it answers."
    )


class ProviderInfo(WireModel):
    name: str
    kind: Literal["openai", "anthropic"]
    base_url: str | None = None
    key: str | None = Field(
        default=None, description="Where the key comes from (never the key); absent when none."
    )
    needs_key: bool
    status: str | None = Field(
        default=None, description='With `probe`: "answers", "HTTP 401", "unreachable (…)", …'
    )


class ModelsListResult(Reply):
    type: Literal["models.list.result"] = "models.list.result"
    default: str | None = Field(
        default=None, description='"provider:model"; absent when no default model is set.'
    )
    providers: list[ProviderInfo]


CLIENT_MESSAGES = (ConfigReload, ModelsList)
SERVER_MESSAGES = (ConfigReloadResult, ModelsListResult)
