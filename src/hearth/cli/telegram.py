"""`hearth telegram pair|users|allow|revoke`: who may use the Telegram bot.

Everything goes through the running gateway (telegram.* messages), so a pairing takes effect
at once and works the same when the database is PostgreSQL shared by several nodes.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hearth.cli.common import DataDirOption, console, run, with_client
from hearth.client import GatewayClient
from hearth.protocol.messages.telegram import (
    TelegramAllow,
    TelegramPair,
    TelegramRevoke,
    TelegramUserChanged,
    TelegramUsers,
    TelegramUsersResult,
)

app = typer.Typer(
    help="The Telegram bot: pair your phone, allow or revoke Telegram users.",
    no_args_is_help=True,
)

UserId = Annotated[int, typer.Argument(help="The numeric Telegram user id.")]


def _show(reply: TelegramUserChanged, verb: str) -> None:
    name = f" ({escape(reply.user.name)})" if reply.user.name else ""
    console.print(f"{verb} Telegram user {reply.user.user_id}{name}", highlight=False)


@app.command("pair")
def pair(
    code: Annotated[str, typer.Argument(help="The code the bot sent (8 characters).")],
    data_dir: DataDirOption = None,
) -> None:
    """Allow the Telegram user the bot gave CODE to."""

    async def ask(client: GatewayClient) -> TelegramUserChanged:
        return await client.request(
            TelegramPair(id=client.next_id(), code=code), TelegramUserChanged
        )

    _show(run(with_client(data_dir, ask)), "paired")


@app.command("allow")
def allow(user_id: UserId, data_dir: DataDirOption = None) -> None:
    """Allow a Telegram user by id, without pairing."""

    async def ask(client: GatewayClient) -> TelegramUserChanged:
        return await client.request(
            TelegramAllow(id=client.next_id(), user_id=user_id), TelegramUserChanged
        )

    _show(run(with_client(data_dir, ask)), "allowed")


@app.command("revoke")
def revoke(user_id: UserId, data_dir: DataDirOption = None) -> None:
    """Stop answering a Telegram user (their chat sessions stay)."""

    async def ask(client: GatewayClient) -> TelegramUserChanged:
        return await client.request(
            TelegramRevoke(id=client.next_id(), user_id=user_id), TelegramUserChanged
        )

    _show(run(with_client(data_dir, ask)), "revoked")


@app.command("users")
def users(data_dir: DataDirOption = None) -> None:
    """Who may use the bot, who asked to, and how its poller is doing."""

    async def ask(client: GatewayClient) -> TelegramUsersResult:
        return await client.request(TelegramUsers(id=client.next_id()), TelegramUsersResult)

    result = run(with_client(data_dir, ask))
    status = result.status
    line = f"bot: {status.state}"
    if status.bot_username:
        line += f" (@{status.bot_username})"
    if status.problem:
        line += f" — {escape(status.problem)}"
    console.print(line, highlight=False)
    if not result.users:
        console.print("no Telegram user is allowed yet")
    else:
        table = Table("user id", "name", "allowed by")
        for user in result.users:
            table.add_row(str(user.user_id), escape(user.name), user.source)
        console.print(table)
    if result.pending:
        table = Table("user id", "name", "code expires")
        for pending in result.pending:
            table.add_row(
                str(pending.user_id),
                escape(pending.name),
                pending.expires_at.astimezone().strftime("%H:%M"),
            )
        console.print("waiting for `hearth telegram pair CODE`:")
        console.print(table)
