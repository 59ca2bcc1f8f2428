"""The Bot API calls the channel makes, with Telegram's answers turned into plain outcomes.

python-telegram-bot does the HTTP (HTTPX) and rate limiting (its AIORateLimiter, with no retries
of its own: a 429 is raised as `RateLimited` so the caller decides whether the call is still
worth making — a stale streaming edit is not). Two refusals are handled here once for every
caller: "message is not modified" means the chat already shows the text, and "can't parse
entities" means the formatting was refused, so the text is sent again without it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, RetryAfter
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

log = logging.getLogger("hearth.channels.telegram")

#: (label, callback data) rows of inline buttons.
Buttons = list[list[tuple[str, str]]]


class RateLimited(Exception):
    """Telegram answered 429: nothing more to this chat for `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Telegram asked to wait {seconds:g} s")
        self.seconds = seconds


@dataclass(frozen=True)
class Shown:
    """What a message shows after a send or an edit (entities None when sent as plain text)."""

    message_id: int
    text: str
    entities: list[dict[str, Any]] | None


class RedactToken(logging.Filter):
    """HTTPX logs every request URL, and Bot API URLs contain the token: hide it."""

    LOGGERS = ("httpx", "telegram")

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg = message.replace(self.token, "<bot token>")
            record.args = None
        return True

    def install(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)


def make_bot(token: str, api_base_url: str, poll_timeout_s: float) -> ExtBot[Any]:
    """The python-telegram-bot client for `{api_base_url}/bot{token}/{method}`."""
    return ExtBot(
        token,
        base_url=f"{api_base_url}/bot",
        base_file_url=f"{api_base_url}/file/bot",
        request=HTTPXRequest(connection_pool_size=16, read_timeout=20.0, connect_timeout=10.0),
        get_updates_request=HTTPXRequest(
            connection_pool_size=2, read_timeout=poll_timeout_s + 10.0, connect_timeout=10.0
        ),
        rate_limiter=AIORateLimiter(max_retries=0),
    )


def _seconds(exc: RetryAfter) -> float:
    """`retry_after` in seconds, whichever type this python-telegram-bot version returns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns that the type will change
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _entities(entities: list[dict[str, Any]] | None) -> list[MessageEntity] | None:
    if not entities:
        return None
    return [
        MessageEntity(
            type=e["type"],
            offset=e["offset"],
            length=e["length"],
            url=e.get("url"),
            language=e.get("language"),
            custom_emoji_id=e.get("custom_emoji_id"),
        )
        for e in entities
    ]


def _markup(buttons: Buttons | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in buttons
        ]
    )


def _refused_entities(exc: BadRequest) -> bool:
    text = exc.message.lower()
    return "parse entities" in text or "entity" in text


def _not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in exc.message.lower()


class TelegramApi:
    def __init__(self, bot: ExtBot[Any]) -> None:
        self.bot = bot

    async def send(
        self,
        chat_id: int,
        text: str,
        entities: list[dict[str, Any]] | None = None,
        buttons: Buttons | None = None,
    ) -> Shown:
        try:
            try:
                message = await self.bot.send_message(
                    chat_id,
                    text,
                    entities=_entities(entities),
                    reply_markup=_markup(buttons),
                )
            except BadRequest as exc:
                if not entities or not _refused_entities(exc):
                    raise
                log.warning("Telegram refused the formatting (%s); sending plain text", exc)
                entities = None
                message = await self.bot.send_message(chat_id, text, reply_markup=_markup(buttons))
        except RetryAfter as exc:
            raise RateLimited(_seconds(exc)) from None
        return Shown(message.message_id, text, entities)

    async def edit(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        entities: list[dict[str, Any]] | None = None,
        buttons: Buttons | None = None,
    ) -> Shown:
        """Show `text` in an existing message (without buttons unless given)."""
        try:
            try:
                await self.bot.edit_message_text(
                    text,
                    chat_id=chat_id,
                    message_id=message_id,
                    entities=_entities(entities),
                    reply_markup=_markup(buttons),
                )
            except BadRequest as exc:
                if _not_modified(exc):
                    return Shown(message_id, text, entities)
                if not entities or not _refused_entities(exc):
                    raise
                log.warning("Telegram refused the formatting (%s); editing in plain text", exc)
                entities = None
                try:
                    await self.bot.edit_message_text(
                        text, chat_id=chat_id, message_id=message_id, reply_markup=_markup(buttons)
                    )
                except BadRequest as again:
                    if not _not_modified(again):
                        raise
        except RetryAfter as exc:
            raise RateLimited(_seconds(exc)) from None
        return Shown(message_id, text, entities)

    async def typing(self, chat_id: int) -> None:
        await self.bot.send_chat_action(chat_id, ChatAction.TYPING)

    async def answer_callback(self, query_id: str, text: str, *, alert: bool = False) -> None:
        await self.bot.answer_callback_query(query_id, text=text[:200], show_alert=alert)

    async def set_commands(self, commands: list[tuple[str, str]]) -> None:
        await self.bot.set_my_commands([BotCommand(name, about) for name, about in commands])

    async def updates(self, offset: int, poll_s: int) -> list[Update]:
        """Long-poll: Telegram answers as soon as there is an update, or after `poll_s`."""
        return list(
            await self.bot.get_updates(
                offset=offset or None,
                timeout=poll_s,
                allowed_updates=["message", "callback_query"],
                read_timeout=poll_s + 10.0,
            )
        )

    def parse(self, payload: dict[str, Any]) -> Update | None:
        return Update.de_json(payload, self.bot)
