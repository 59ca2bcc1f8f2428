"""telegram.*: who may use the Telegram bot (pairing, allow, revoke), and its poller's state."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Reply, WireModel

TelegramState = Literal["disabled", "starting", "ok", "standby", "conflict", "stalled", "error"]


class TelegramStatusInfo(WireModel):
    """The Telegram channel as `gateway.status` reports it."""

    enabled: bool
    state: TelegramState = Field(
        description="standby: another node polls the bot; conflict: 409 from Telegram (another "
        "process polls the same bot); stalled: no successful getUpdates for too long."
    )
    polling: bool = Field(description="This node holds the bot's poller lease.")
    problem: str | None = None
    bot_username: str | None = None
    last_poll_at: datetime | None = None


class TelegramUserInfo(WireModel):
    user_id: int
    name: str
    source: Literal["config", "paired", "allowed"]
    session_id: str | None = None


class TelegramPendingPairing(WireModel):
    """An unknown user who asked for access (the code itself is only on their phone)."""

    user_id: int
    name: str
    expires_at: datetime


class TelegramPair(ClientMessage):
    """Allow the Telegram user who was given `code` by the bot."""

    type: Literal["telegram.pair"] = "telegram.pair"
    code: str = Field(min_length=1, max_length=32)


class TelegramAllow(ClientMessage):
    type: Literal["telegram.allow"] = "telegram.allow"
    user_id: int


class TelegramRevoke(ClientMessage):
    type: Literal["telegram.revoke"] = "telegram.revoke"
    user_id: int


class TelegramUserChanged(Reply):
    """The reply to `telegram.pair`, `telegram.allow` and `telegram.revoke`."""

    type: Literal["telegram.user.changed"] = "telegram.user.changed"
    user: TelegramUserInfo
    allowed: bool


class TelegramUsers(ClientMessage):
    type: Literal["telegram.users"] = "telegram.users"


class TelegramUsersResult(Reply):
    type: Literal["telegram.users.result"] = "telegram.users.result"
    users: list[TelegramUserInfo]
    pending: list[TelegramPendingPairing]
    status: TelegramStatusInfo


CLIENT_MESSAGES = (TelegramPair, TelegramAllow, TelegramRevoke, TelegramUsers)
SERVER_MESSAGES = (TelegramUserChanged, TelegramUsersResult)
