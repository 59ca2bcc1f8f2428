"""The Telegram channel (python-telegram-bot): chats, approvals, alerts and notifications.

Only what works without the optional `telegram` extra is imported here; the channel itself
(`channel.py`) is imported when it is enabled.
"""

from hearth.channels.telegram.access import TelegramAccess, TelegramAccessError, UserView
from hearth.channels.telegram.service import TelegramService

__all__ = [
    "TelegramAccess",
    "TelegramAccessError",
    "TelegramService",
    "UserView",
]
