"""The Telegram channel: polls the bot, relays chats, approvals, alerts and notifications.

One node polls a bot (a lease in the database). Each batch of updates is stored in the inbox
with the new offset in one transaction, then handled one by one; handling is idempotent (every
message it sends is claimed in the ledger first), so a crash at any point means: on restart the
unfinished updates are handled again, and only what was not sent yet is sent. A chat reply that
was streaming when the process died is finished with a note, not asked of the model again.

The channel is a peer of the gateway: it calls the chat service and the workflow engine
directly and listens to domain events on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from telegram import Message, Update, User
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from hearth.channels.telegram.access import TelegramAccess
from hearth.channels.telegram.alerts import TOPICS as ALERT_TOPICS
from hearth.channels.telegram.alerts import AlertRelay
from hearth.channels.telegram.api import RedactToken, TelegramApi, make_bot
from hearth.channels.telegram.approvals import ApprovalRelay
from hearth.channels.telegram.format import RichText
from hearth.channels.telegram.health import PollHealth
from hearth.channels.telegram.stream import ChatPacer, ReplyStream, finish_interrupted
from hearth.chat.errors import SessionBusyError, SessionNotFoundError
from hearth.chat.service import ChatService
from hearth.config import TelegramSettings
from hearth.events import DomainEvent, EventBus, Subscription
from hearth.models import ModelNotConfiguredError
from hearth.store import Database
from hearth.store.telegram import RECEIVED, STREAMING, InboxItem, LeaseLostError, TelegramRepository
from hearth.workflows.engine import WorkflowEngine

log = logging.getLogger("hearth.channels.telegram")

COMMANDS = [
    ("new", "Start a new chat"),
    ("stop", "Stop the reply being written"),
    ("status", "How the gateway and this chat are doing"),
    ("approvals", "What is waiting for your approval"),
    ("help", "What this bot does"),
]
HELP = (
    "I am your Hearth gateway. Write to me and the agent answers here; approvals and alerts "
    "show up here too.\n\n" + "\n".join(f"/{name} — {about}" for name, about in COMMANDS)
)
STREAM_TOPICS = ("chat.stream.delta", "chat.stream.end", "chat.error")
APPROVAL_TOPICS = ("tool.approval.", "workflow.approval.", "workflow.status", "approval.")
ORPHAN_TTL_S = 120.0
APPROVAL_SWEEP_S = 5.0
#: Handled updates and settled ledger rows are kept this long (pruned when a node starts
#: polling).
KEEP_HISTORY = timedelta(days=30)
#: How long a graceful stop waits for replies to make their last edits.
STOP_GRACE_S = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


def _dead_here(hostname: str | None, pid: int | None) -> bool:
    """True for a node that ran on this host and whose process is gone."""
    if hostname != socket.gethostname() or pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class _Live:
    stream: ReplyStream
    update_id: int
    chat_id: int
    task: asyncio.Task[None] | None = None


class TelegramChannel:
    def __init__(
        self,
        *,
        settings: TelegramSettings,
        token: str,
        repo: TelegramRepository,
        access: TelegramAccess,
        bus: EventBus,
        db: Database,
        chat: ChatService,
        workflows: WorkflowEngine,
        node_id: str,
        version: str,
    ) -> None:
        self.settings = settings
        self.bot_id = token.split(":", 1)[0]
        self.repo = repo
        self.access = access
        self.bus = bus
        self.chat = chat
        self.node_id = node_id
        self.version = version
        self.poll_timeout = int(min(settings.poll_timeout_s, max(1.0, settings.lease_s / 3)))
        self.api = TelegramApi(make_bot(token, settings.api_base_url, self.poll_timeout))
        self._redact = RedactToken(token)
        self.health = PollHealth(settings.stall_after_s, self.poll_timeout)
        self.pacer = ChatPacer(settings.edit_interval_s)
        self.approvals = ApprovalRelay(
            api=self.api,
            repo=repo,
            bot_id=self.bot_id,
            db=db,
            chat=chat,
            workflows=workflows,
            recipients=access.allowed_ids,
        )
        self.alerts = AlertRelay(
            api=self.api, repo=repo, bot_id=self.bot_id, recipients=self._alert_users
        )
        self._live: dict[str, _Live] = {}
        self._by_chat: dict[int, str] = {}
        self._orphans: dict[str, tuple[float, list[DomainEvent]]] = {}
        self._initialized = False
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Subscription | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._redact.install()
        self._subscription = self.bus.subscribe(
            *STREAM_TOPICS, *ALERT_TOPICS, *APPROVAL_TOPICS, maxsize=10_000
        )
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name="telegram-lease"),
            asyncio.create_task(self._poll_loop(), name="telegram-poll"),
            asyncio.create_task(self._event_loop(self._subscription), name="telegram-events"),
            asyncio.create_task(
                self.approvals.run(APPROVAL_SWEEP_S, lambda: self.health.polling),
                name="telegram-approvals",
            ),
            asyncio.create_task(self._watchdog(), name="telegram-watchdog"),
        ]

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_GRACE_S):
                await self._settle_streams()
        live = [item.task for item in self._live.values() if item.task is not None]
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        if self.health.polling:
            with contextlib.suppress(Exception):
                await self.repo.release_lease(self.bot_id, self.node_id)
        with contextlib.suppress(Exception):
            await self.api.bot.shutdown()
        self._redact.remove()

    async def _settle_streams(self) -> None:
        """On a graceful stop: let finished replies make their last edit, and end the others
        with a note now (the chat streams stop with the gateway) rather than at next start."""
        for request_id, live in list(self._live.items()):
            if live.task is None:
                continue
            if live.stream.finished:
                await asyncio.wait({live.task})
                continue
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)
            await finish_interrupted(self.api, self.repo, self.bot_id, live.chat_id, request_id)
            await self.repo.mark_done(self.bot_id, live.update_id, _now())

    def status(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "state": self.health.state,
            "polling": self.health.polling,
            "problem": self.health.problem,
            "bot_username": self.health.bot_username,
            "last_poll_at": self.health.last_ok_at,
        }

    async def _alert_users(self) -> list[int]:
        return list(self.settings.alert_users) or await self.access.allowed_ids()

    # -- polling --------------------------------------------------------------------------

    async def _lead(self) -> bool:
        now = _now()
        until = now + timedelta(seconds=self.settings.lease_s)
        leader = await self.repo.acquire_lease(self.bot_id, self.node_id, now, until)
        if not leader:
            holder = await self.repo.lease_holder(self.bot_id)
            if holder is not None and _dead_here(holder[1], holder[2]):
                # A process on this host that died (SIGKILL, power cut) left the lease: a
                # restart should not sit out the rest of it.
                log.info("taking over the Telegram poller lease of dead node %s", holder[0])
                leader = await self.repo.take_over(self.bot_id, holder[0], self.node_id, now, until)
        if leader and not self.health.polling:
            log.info("this node polls Telegram bot %s", self.bot_id)
            self.health.became_poller()
            self._initialized = False
        elif not leader and self.health.polling:
            log.info("another node polls Telegram bot %s now", self.bot_id)
        self.health.polling = leader
        return leader

    async def _lease_loop(self) -> None:
        """Renew the lease on its own clock, so a slow update never lets it lapse."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not renew the Telegram poller lease: %s", exc)
            await asyncio.sleep(self.settings.lease_s / 3)

    async def _poll_loop(self) -> None:
        backoff = 1.0
        while True:
            try:
                if not self.health.polling:
                    await asyncio.sleep(min(1.0, self.settings.lease_s / 3))
                    continue
                if not self._initialized:
                    await self._initialize()
                offset = await self.repo.offset(self.bot_id)
                self.health.sending()
                try:
                    updates = await self.api.updates(offset, self.poll_timeout)
                finally:
                    self.health.in_flight_since = None
                self.health.ok()
                backoff = 1.0
                stored = await self.repo.receive(
                    self.bot_id,
                    self.node_id,
                    [(u.update_id, u.to_dict()) for u in updates],
                    _now(),
                )
                for update_id in stored:
                    item = await self.repo.get_update(self.bot_id, update_id)
                    if item is not None:
                        await self._handle_safely(item)
                continue
            except asyncio.CancelledError:
                raise
            except LeaseLostError:
                self.health.polling = False
                continue
            except Conflict as exc:
                self.health.fail("conflict", f"409 {exc.message}")
            except InvalidToken as exc:
                self.health.fail("error", f"the bot token was refused: {exc.message}")
            except (NetworkError, TelegramError, OSError, sa.exc.SQLAlchemyError) as exc:
                self.health.fail("error", f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                log.exception("Telegram poller failed")
                self.health.fail("error", f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _initialize(self) -> None:
        """On becoming the poller: check the token, register commands, finish leftovers."""
        await self.api.bot.initialize()
        self.health.bot_username = self.api.bot.username
        await self.api.set_commands(COMMANDS)
        await self.repo.prune(self.bot_id, _now() - KEEP_HISTORY)
        forgotten = await self.repo.forget_unconfirmed(self.bot_id, _now())
        if forgotten:
            log.warning(
                "%d Telegram message(s) may have been sent before a crash; resending", forgotten
            )
        for item in await self.repo.unfinished(self.bot_id):
            if item.request_id is not None and item.request_id in self._live:
                continue
            await self._handle_safely(item)
        self._initialized = True
        self.approvals.wake()

    async def _watchdog(self) -> None:
        interval = max(0.05, min(5.0, self.settings.stall_after_s / 4))
        while True:
            await asyncio.sleep(interval)
            self.health.check_stall()

    # -- updates --------------------------------------------------------------------------

    async def _handle_safely(self, item: InboxItem) -> None:
        try:
            await self._handle(item)
        except asyncio.CancelledError:
            raise
        except (NetworkError, OSError) as exc:
            # Left unfinished: handled again when this node next becomes the poller.
            log.warning("could not handle Telegram update %s yet: %s", item.update_id, exc)
        except Exception:
            log.exception("Telegram update %s failed; skipping it", item.update_id)
            await self.repo.mark_done(self.bot_id, item.update_id, _now())

    async def _handle(self, item: InboxItem) -> None:
        update = self.api.parse(item.payload)
        if update is None:
            await self._done(item)
            return
        if item.status == STREAMING and item.request_id is not None:
            message = update.effective_message
            if message is not None:
                await finish_interrupted(
                    self.api, self.repo, self.bot_id, message.chat.id, item.request_id
                )
            await self._done(item)
            return
        if update.callback_query is not None:
            await self._on_callback(update, item)
            return
        message = update.message
        if message is None or message.from_user is None or not message.text:
            await self._done(item)
            return
        await self._on_message(message, message.from_user, item)

    async def _done(self, item: InboxItem) -> None:
        await self.repo.mark_done(self.bot_id, item.update_id, _now())

    async def _reply(self, item: InboxItem, chat_id: int, rich: RichText) -> None:
        """The one answer an update gets (claimed by update id: never sent twice)."""
        cause = f"update:{item.update_id}"
        claimed = await self.repo.claim(
            self.bot_id, chat_id, cause, kind="reply", ref=None, text=rich.text, now=_now()
        )
        if claimed is None:
            try:
                shown = await self.api.send(chat_id, rich.text, rich.entities)
            except BaseException:
                await self.repo.release(self.bot_id, chat_id, cause)
                raise
            await self.repo.record(
                self.bot_id,
                chat_id,
                cause,
                message_id=shown.message_id,
                text=shown.text,
                entities=shown.entities,
                now=_now(),
            )
        await self._done(item)

    def _addressed(self, message: Message) -> bool:
        """In a group: the message mentions the bot or replies to one of its messages."""
        username = self.api.bot.username
        text = message.text or ""
        if username and f"@{username}".lower() in text.lower():
            return True
        reply = message.reply_to_message
        return bool(reply and reply.from_user and str(reply.from_user.id) == self.bot_id)

    async def _on_message(self, message: Message, user: User, item: InboxItem) -> None:
        chat = message.chat
        text = message.text or ""
        if chat.type == "private":
            if not await self.access.is_allowed(user.id):
                await self._pair(item, chat.id, user)
                return
        elif chat.type in ("group", "supergroup"):
            if (
                chat.id not in self.settings.allowed_groups
                or not self._addressed(message)
                or not await self.access.is_allowed(user.id)
            ):
                await self._done(item)
                return
            username = self.api.bot.username or ""
            text = text.replace(f"@{username}", "").strip() if username else text
        else:
            await self._done(item)
            return
        if text.startswith("/"):
            command = text.split()[0][1:].split("@", 1)[0].lower()
            await self._command(command, item, chat.id, user)
            return
        await self._start_reply(item, chat.id, user, text)

    async def _pair(self, item: InboxItem, chat_id: int, user: User) -> None:
        code = await self.access.pairing_code(user.id, chat_id, user.full_name)
        rich = RichText()
        if code is None:
            rich.add(
                "You already have 3 pairing codes waiting; use one of them (each is valid for "
                "1 hour)."
            )
        else:
            rich.add("This Hearth bot is private. To allow this Telegram account, run this on ")
            rich.add("the gateway's host:\n\n")
            rich.add(f"hearth telegram pair {code}", "code")
            rich.add("\n\nThe code is valid for 1 hour.")
        await self._reply(item, chat_id, rich)

    async def _command(self, command: str, item: InboxItem, chat_id: int, user: User) -> None:
        rich = RichText()
        if command in ("start", "help"):
            rich.add(HELP)
        elif command == "new":
            await self.access.user(user.id, user.full_name)
            await self.repo.set_session(user.id, None)
            rich.add("Started a new chat: your next message begins it.")
        elif command == "stop":
            request_id = self._by_chat.get(chat_id)
            if request_id is not None and await self.chat.cancel(request_id):
                rich.add("Stopped.")
            else:
                rich.add("Nothing is being written right now.")
        elif command == "status":
            tg_user = await self.access.user(user.id, user.full_name)
            pending = await self.approvals.pending()
            rich.add(f"Hearth {self.version}\n", "bold")
            session = tg_user.session_id
            rich.add(f"Chat session: {session[:8] if session else 'new'}")
            rich.add(" (writing)\n" if chat_id in self._by_chat else "\n")
            rich.add(f"Waiting for approval: {len(pending)}\n")
            rich.add(f"Telegram polling: {self.health.state}")
        elif command == "approvals":
            pending = await self.approvals.pending()
            if not pending:
                rich.add("Nothing is waiting for your approval.")
            else:
                rich.add(f"{len(pending)} waiting for your approval:\n", "bold")
                for approval in pending:
                    rich.add(f"• {approval.title[:200]}\n")
                rich.add("Their buttons are on the prompts in this chat.")
                self.approvals.wake()
        else:
            rich.add(f"I do not know /{command}.\n\n{HELP}")
        await self._reply(item, chat_id, rich)

    async def _start_reply(self, item: InboxItem, chat_id: int, user: User, text: str) -> None:
        # Telegram shows "typing…" until the first words arrive.
        await self.api.typing(chat_id)
        tg_user = await self.access.user(user.id, user.full_name)
        try:
            try:
                started = await self.chat.send(text, session_id=tg_user.session_id)
            except SessionNotFoundError:  # deleted from another client: start afresh
                started = await self.chat.send(text)
        except SessionBusyError:
            await self._reply(
                item,
                chat_id,
                RichText().add("I am still answering your previous message; /stop stops it."),
            )
            return
        except ModelNotConfiguredError as exc:
            await self._reply(item, chat_id, RichText().add(f"⚠️ No model to answer with: {exc}"))
            return
        if tg_user.session_id != started.session.id:
            await self.repo.set_session(user.id, started.session.id)
        await self.repo.mark_streaming(self.bot_id, item.update_id, started.request_id)
        stream = ReplyStream(
            api=self.api,
            repo=self.repo,
            bot_id=self.bot_id,
            chat_id=chat_id,
            request_id=started.request_id,
            pacer=self.pacer,
        )
        live = _Live(stream, item.update_id, chat_id)
        self._live[started.request_id] = live
        self._by_chat[chat_id] = started.request_id
        _, early = self._orphans.pop(started.request_id, (0.0, []))
        for event in early:
            self._feed(live, event)
        live.task = asyncio.create_task(
            self._run_stream(started.request_id, live), name=f"telegram-{started.request_id}"
        )

    async def _run_stream(self, request_id: str, live: _Live) -> None:
        try:
            await live.stream.run()
            await self.repo.mark_done(self.bot_id, live.update_id, _now())
        except Exception:
            log.exception("Telegram reply %s failed", request_id)
        finally:
            self._live.pop(request_id, None)
            if self._by_chat.get(live.chat_id) == request_id:
                del self._by_chat[live.chat_id]

    async def _on_callback(self, update: Update, item: InboxItem) -> None:
        query = update.callback_query
        assert query is not None
        user = query.from_user
        if not await self.access.is_allowed(user.id):
            await self.api.answer_callback(
                query.id, "You are not allowed to answer this bot's approvals.", alert=True
            )
        else:
            text = await self.approvals.answer(query.data or "", user.id, user.full_name)
            await self.api.answer_callback(query.id, text)
        await self._done(item)

    # -- events ---------------------------------------------------------------------------

    def _feed(self, live: _Live, event: DomainEvent) -> None:
        if event.topic == "chat.stream.delta":
            live.stream.add(str(event.data.get("delta", "")))
        elif event.topic == "chat.error":
            live.stream.finish(f"⚠️ {event.data.get('message', 'the model failed')}")
        elif event.topic == "chat.stream.end":
            status = event.data.get("status")
            live.stream.finish("(stopped)" if status == "cancelled" else None)

    def _keep_orphan(self, request_id: str, event: DomainEvent) -> None:
        """An event for a reply not attached yet (chat.send has not returned to us)."""
        now = time.monotonic()
        for key in [k for k, (at, _) in self._orphans.items() if now - at > ORPHAN_TTL_S]:
            del self._orphans[key]
        self._orphans.setdefault(request_id, (now, []))[1].append(event)

    async def _event_loop(self, subscription: Subscription) -> None:
        async for event in subscription:
            try:
                if event.topic in STREAM_TOPICS:
                    request_id = str(event.data.get("requestId", ""))
                    live = self._live.get(request_id)
                    if live is not None:
                        self._feed(live, event)
                    elif request_id:
                        self._keep_orphan(request_id, event)
                elif event.topic in ALERT_TOPICS:
                    if self.health.polling:
                        task = asyncio.create_task(self._deliver(event))
                        self._deliveries.add(task)
                        task.add_done_callback(self._deliveries.discard)
                else:
                    self.approvals.wake()
            except Exception:
                log.exception("Telegram channel could not handle %s", event.topic)

    async def _deliver(self, event: DomainEvent) -> None:
        try:
            await self.alerts.deliver(event)
        except Exception:
            log.exception("could not relay %s to Telegram", event.topic)


__all__ = ["RECEIVED", "TelegramChannel"]
