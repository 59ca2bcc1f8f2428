"""telegram.*: pair, allow, revoke and list the Telegram users of the bot."""

from __future__ import annotations

from hearth.channels.telegram import TelegramService, UserView
from hearth.gateway.dispatch import HandlerContext, handles
from hearth.protocol import ErrorCode, ProtocolError
from hearth.protocol.messages.telegram import (
    TelegramAllow,
    TelegramPair,
    TelegramPendingPairing,
    TelegramRevoke,
    TelegramStatusInfo,
    TelegramUserChanged,
    TelegramUserInfo,
    TelegramUsers,
    TelegramUsersResult,
)


def _service(ctx: HandlerContext) -> TelegramService:
    service = ctx.state.telegram
    if service is None:  # pragma: no cover - the composition root always builds it
        raise ProtocolError(ErrorCode.INTERNAL_ERROR, "this gateway has no Telegram service")
    return service


def _info(user: UserView) -> TelegramUserInfo:
    return TelegramUserInfo(
        user_id=user.user_id,
        name=user.name,
        source=user.source,
        session_id=user.session_id,
    )


def _changed(message_id: str, user: UserView) -> TelegramUserChanged:
    return TelegramUserChanged(id=message_id, user=_info(user), allowed=user.allowed)


def status_info(service: TelegramService) -> TelegramStatusInfo:
    return TelegramStatusInfo.model_validate(service.status())


@handles(TelegramPair)
async def pair(message: TelegramPair, ctx: HandlerContext) -> TelegramUserChanged:
    return _changed(message.id, await _service(ctx).access.pair(message.code))


@handles(TelegramAllow)
async def allow(message: TelegramAllow, ctx: HandlerContext) -> TelegramUserChanged:
    return _changed(message.id, await _service(ctx).access.allow(message.user_id))


@handles(TelegramRevoke)
async def revoke(message: TelegramRevoke, ctx: HandlerContext) -> TelegramUserChanged:
    return _changed(message.id, await _service(ctx).access.revoke(message.user_id))


@handles(TelegramUsers)
async def users(message: TelegramUsers, ctx: HandlerContext) -> TelegramUsersResult:
    service = _service(ctx)
    return TelegramUsersResult(
        id=message.id,
        users=[_info(u) for u in await service.access.users()],
        pending=[
            TelegramPendingPairing(user_id=p.user_id, name=p.name, expires_at=p.expires_at)
            for p in await service.access.pending()
        ],
        status=status_info(service),
    )
