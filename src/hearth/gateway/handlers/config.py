"""config.reload and models.list: the running gateway's configuration."""

from __future__ import annotations

from hearth.config import ConfigError
from hearth.gateway.dispatch import HandlerContext, handles
from hearth.protocol import ErrorCode, ProtocolError
from hearth.protocol.messages.config import (
    ConfigReload,
    ConfigReloadResult,
    ModelsList,
    ModelsListResult,
    ProviderInfo,
)
from hearth.provider_status import known_providers, probe_all


@handles(ConfigReload)
async def config_reload(message: ConfigReload, ctx: HandlerContext) -> ConfigReloadResult:
    state = ctx.state
    path = state.settings.config_path
    if state.reload_config is None:
        raise ProtocolError(ErrorCode.INTERNAL_ERROR, "this gateway cannot reload its settings")
    try:
        outcome = await state.reload_config("config.reload")
    except ConfigError as exc:
        raise ProtocolError(
            ErrorCode.CONFIG_INVALID,
            f"{exc}; the gateway keeps its running settings",
            {"path": str(path)},
        ) from None
    return ConfigReloadResult(
        id=message.id,
        path=str(path),
        applied=outcome.applied,
        restart_required=outcome.needs_restart,
        message=outcome.summary(str(path)),
    )


@handles(ModelsList)
async def models_list(message: ModelsList, ctx: HandlerContext) -> ModelsListResult:
    settings = ctx.state.settings
    keys = ctx.state.keys
    providers = known_providers(settings.providers, keys)
    if message.probe:
        providers = await probe_all(providers, keys)
    return ModelsListResult(
        id=message.id,
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
