"""Who may talk to the bot: the configured users, and users paired with a one-time code.

An unknown user who writes to the bot gets a pairing code and nothing else. The person who owns
the gateway runs `hearth telegram pair CODE` on the host, which proves the Telegram account is
theirs (or someone they chose). Codes are 8 characters from an alphabet without look-alikes
(no 0/O, 1/I), valid for an hour, and a user has at most 3 pending at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from hearth.errors import DomainError
from hearth.store.telegram import Pairing, TelegramRepository, TelegramUser

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_VALID = timedelta(hours=1)
MAX_PENDING = 3
Source = Literal["config", "paired", "allowed"]


class TelegramAccessError(DomainError):
    """A pairing or user change that cannot be done; `code` is the protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class UserView:
    user_id: int
    name: str
    source: Source
    allowed: bool
    session_id: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """People type codes by hand: case and spaces or dashes do not matter."""
    return "".join(c for c in code.upper() if c.isalnum())


class TelegramAccess:
    def __init__(self, repo: TelegramRepository, configured: Sequence[int]) -> None:
        self.repo = repo
        self.configured = frozenset(configured)

    def _grants(self, user: TelegramUser) -> bool:
        """A stored row allows its user unless it only mirrors `allowed_users`: then the
        configuration decides, so removing an id from the file takes its access away."""
        if user.source == "config":
            return user.user_id in self.configured
        return user.allowed

    async def is_allowed(self, user_id: int) -> bool:
        if user_id in self.configured:
            return True
        user = await self.repo.user(user_id)
        return user is not None and self._grants(user)

    async def allowed_ids(self) -> list[int]:
        ids = set(self.configured)
        ids.update(u.user_id for u in await self.repo.users() if self._grants(u))
        return sorted(ids)

    async def user(self, user_id: int, name: str) -> TelegramUser:
        """The allowed user's row (created on first contact for configured users)."""
        user = await self.repo.user(user_id)
        if user is None:
            user = await self.repo.put_user(user_id, name, "config", True, _now())
        return user

    async def pairing_code(self, user_id: int, chat_id: int, name: str) -> str | None:
        """A fresh code for an unknown user; None when they already have 3 pending."""
        now = _now()
        if len(await self.repo.pending_pairings(user_id, now)) >= MAX_PENDING:
            return None
        code = new_code()
        await self.repo.add_pairing(
            Pairing(code, user_id, chat_id, name[:200], now, now + CODE_VALID, None)
        )
        return code

    async def pair(self, code: str) -> UserView:
        pairing = await self.repo.redeem(normalise_code(code), _now())
        if pairing is None:
            raise TelegramAccessError(
                "PAIRING_CODE_INVALID",
                f"no pending pairing code {code!r} (codes are valid for 1 hour and work once; "
                "the person gets a new one by writing to the bot again)",
            )
        user = await self.repo.put_user(pairing.user_id, pairing.name, "paired", True, _now())
        return self._view(user)

    async def allow(self, user_id: int) -> UserView:
        existing = await self.repo.user(user_id)
        source = existing.source if existing and existing.source == "paired" else "allowed"
        user = await self.repo.put_user(user_id, "", source, True, _now())
        return self._view(user)

    async def revoke(self, user_id: int) -> UserView:
        if user_id in self.configured:
            raise TelegramAccessError(
                "INVALID_INPUT",
                f"user {user_id} is listed in telegram.allowed_users in config.toml; remove it "
                "there (and restart the gateway) to revoke it",
            )
        existing = await self.repo.user(user_id)
        if existing is None or not existing.allowed:
            raise TelegramAccessError(
                "TELEGRAM_USER_NOT_FOUND",
                f"Telegram user {user_id} is not allowed; `hearth telegram users` lists who is",
            )
        user = await self.repo.put_user(user_id, "", existing.source, False, _now())
        return self._view(user)

    async def users(self) -> list[UserView]:
        rows = {u.user_id: u for u in await self.repo.users()}
        views = [
            self._view(u) for u in rows.values() if self._grants(u) or u.user_id in self.configured
        ]
        views.extend(
            UserView(uid, "", "config", True, None) for uid in self.configured if uid not in rows
        )
        return sorted(views, key=lambda v: v.user_id)

    async def pending(self) -> list[Pairing]:
        return await self.repo.pending_pairings(None, _now())

    def _view(self, user: TelegramUser) -> UserView:
        configured = user.user_id in self.configured
        source: Source = "config"
        if not configured:
            source = "paired" if user.source == "paired" else "allowed"
        return UserView(
            user.user_id,
            user.name,
            source,
            user.allowed or configured,
            user.session_id,
        )
