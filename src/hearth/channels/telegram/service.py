"""What the rest of the gateway sees of Telegram: user access (always) and the channel (when on).

Users can be paired, allowed and revoked while the channel is off, so a person can set up
access before turning the bot on. The token comes from the environment
(HEARTH_TELEGRAM__TOKEN) or the secret store (`hearth keys set telegram`), never config.toml.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hearth.channels.telegram.access import TelegramAccess
from hearth.chat.service import ChatService
from hearth.config import TelegramSettings
from hearth.events import EventBus
from hearth.secrets import SecretStore
from hearth.store import Database
from hearth.store.telegram import TelegramRepository
from hearth.workflows.engine import WorkflowEngine

if TYPE_CHECKING:
    from hearth.channels.telegram.channel import TelegramChannel

log = logging.getLogger("hearth.channels.telegram")

SECRET_NAME = "telegram"  # noqa: S105 - the name under which the token is stored


def resolve_token(settings: TelegramSettings, secrets: SecretStore) -> str | None:
    if settings.token is not None and settings.token.get_secret_value():
        return settings.token.get_secret_value()
    return secrets.get(SECRET_NAME)


class TelegramService:
    def __init__(
        self,
        *,
        settings: TelegramSettings,
        secrets: SecretStore,
        db: Database,
        bus: EventBus,
        chat: ChatService,
        workflows: WorkflowEngine,
        node_id: str,
        version: str,
    ) -> None:
        self.settings = settings
        self.repo = TelegramRepository(db)
        self.access = TelegramAccess(self.repo, settings.allowed_users)
        self.channel: TelegramChannel | None = None
        self.problem: str | None = None
        if not settings.enabled:
            return
        token = resolve_token(settings, secrets)
        if not token or ":" not in token:
            self.problem = (
                "telegram.enabled is true but there is no bot token: store it with "
                "`hearth keys set telegram` or set HEARTH_TELEGRAM__TOKEN"
                if not token
                else "the Telegram bot token does not look like <bot id>:<secret>"
            )
            return
        try:
            # python-telegram-bot is the optional `telegram` extra: only needed when enabled.
            from hearth.channels.telegram.channel import TelegramChannel
        except ImportError as exc:
            self.problem = (
                f"telegram.enabled is true but {exc.name} is not installed: "
                "pip install 'hearthgate[telegram]'"
            )
            return
        self.channel = TelegramChannel(
            settings=settings,
            token=token,
            repo=self.repo,
            access=self.access,
            bus=bus,
            db=db,
            chat=chat,
            workflows=workflows,
            node_id=node_id,
            version=version,
        )

    async def start(self) -> None:
        if self.problem:
            log.error("Telegram channel not started: %s", self.problem)
        if self.channel is not None:
            await self.channel.start()

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.stop()

    def status(self) -> dict[str, Any]:
        if self.channel is not None:
            return self.channel.status()
        return {
            "enabled": self.settings.enabled,
            "state": "error" if self.problem else "disabled",
            "polling": False,
            "problem": self.problem,
        }
