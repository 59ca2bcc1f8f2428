"""A streamed chat reply shown in Telegram by editing one message (more past 4096 UTF-16 units).

Deltas only change the reply's text; a writer task makes the chat show it, one Bot API call
per chat per `edit_interval_s`. Each call renders the *latest* text, so an intermediate state
that a 429 or the pacing skipped is simply never sent (nothing queues), unchanged text is never
re-sent, and the final call carries the complete reply. Every message is claimed in the ledger
(`reply:<request>:<chunk>`) before it is sent, and what it shows is recorded after each call,
so a restart can finish a cut reply with a note instead of sending it again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram.error import BadRequest, NetworkError, TelegramError

from hearth.channels.telegram.api import RateLimited, TelegramApi
from hearth.channels.telegram.render import Chunk, plain_chunks, render
from hearth.store.telegram import OutboxItem, TelegramRepository

log = logging.getLogger("hearth.channels.telegram")

REPLY = "reply"
INTERRUPTED_NOTE = "⚠️ The gateway restarted before this reply was finished."
MAX_NETWORK_FAILURES = 8


def _now() -> datetime:
    return datetime.now(UTC)


def reply_cause(request_id: str, index: int) -> str:
    return f"reply:{request_id}:{index}"


def chunk_index(cause: str) -> int:
    tail = cause.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class ChatPacer:
    """At most one Bot API call per chat per interval; a 429 pushes the next one back."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next: dict[int, float] = {}

    async def wait(self, chat_id: int) -> None:
        loop = asyncio.get_running_loop()
        delay = self._next.get(chat_id, 0.0) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def used(self, chat_id: int) -> None:
        now = asyncio.get_running_loop().time()
        self._next[chat_id] = max(self._next.get(chat_id, 0.0), now + self.interval_s)

    def back_off(self, chat_id: int, seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        self._next[chat_id] = max(self._next.get(chat_id, 0.0), now + seconds)


@dataclass
class _Slot:
    """One message of the reply: its id and what was last asked of Telegram for it."""

    message_id: int
    text: str
    entities: list[dict[str, Any]] | None


class ReplyStream:
    def __init__(
        self,
        *,
        api: TelegramApi,
        repo: TelegramRepository,
        bot_id: str,
        chat_id: int,
        request_id: str,
        pacer: ChatPacer,
    ) -> None:
        self.api = api
        self.repo = repo
        self.bot_id = bot_id
        self.chat_id = chat_id
        self.request_id = request_id
        self.pacer = pacer
        self._parts: list[str] = []
        self._suffix = ""
        self._finished = False
        self._changed = asyncio.Event()
        self._slots: list[_Slot] = []
        self.calls = 0

    @property
    def finished(self) -> bool:
        """The chat stream ended: only the last edits are left to make."""
        return self._finished

    @property
    def markdown(self) -> str:
        return "".join(self._parts)

    def add(self, delta: str) -> None:
        if delta:
            self._parts.append(delta)
            self._changed.set()

    def finish(self, note: str | None = None) -> None:
        """No more deltas; `note` (an error, "stopped") is added below the reply."""
        if note:
            self._suffix = ("\n\n" if self._parts else "") + note
        self._finished = True
        self._changed.set()

    def _desired(self) -> list[Chunk]:
        chunks = render(self.markdown + self._suffix)
        if not chunks and self._finished:
            return plain_chunks("(no reply)")
        return chunks

    def _first_difference(self, desired: list[Chunk]) -> int | None:
        for index, chunk in enumerate(desired):
            if index >= len(self._slots):
                return index
            slot = self._slots[index]
            if (slot.text, slot.entities) != (chunk.text, chunk.entity_list()):
                return index
        return None

    async def run(self) -> None:
        """Until the reply is finished and every message shows its final text."""
        failures = 0
        while True:
            await self._changed.wait()
            await self.pacer.wait(self.chat_id)
            self._changed.clear()
            desired = self._desired()
            index = self._first_difference(desired)
            if index is None:
                if self._finished:
                    return
                continue
            self._changed.set()  # look again after this round: more may differ
            try:
                await self._round(desired)
            except RateLimited as exc:
                log.info("chat %s: Telegram asked to wait %.0f s", self.chat_id, exc.seconds)
                self.pacer.back_off(self.chat_id, exc.seconds)
                continue
            except BadRequest as exc:
                log.error("Telegram refused reply %s: %s", self.request_id, exc)
                return
            except NetworkError as exc:  # connection trouble and timeouts: try again later
                if failures >= MAX_NETWORK_FAILURES:
                    log.error("giving up on Telegram reply %s: %s", self.request_id, exc)
                    return
                failures += 1
                self.pacer.back_off(self.chat_id, min(30.0, 2.0**failures))
                continue
            except TelegramError as exc:
                log.error("Telegram refused reply %s: %s", self.request_id, exc)
                return
            failures = 0
            self.pacer.used(self.chat_id)

    async def _round(self, desired: list[Chunk]) -> None:
        """One paced round: at most one edit (the first message that differs), and a send for
        every chunk that has no message yet (a new message is not an edit; without this a
        fast model would outrun the bot by a chunk per interval)."""
        edited = False
        for index, chunk in enumerate(desired):
            if index < len(self._slots):
                slot = self._slots[index]
                if edited or (slot.text, slot.entities) == (chunk.text, chunk.entity_list()):
                    continue
                edited = True
            await self._apply(index, chunk)
            self.calls += 1

    async def _apply(self, index: int, chunk: Chunk) -> None:
        entities = chunk.entity_list()
        cause = reply_cause(self.request_id, index)
        if index < len(self._slots):
            slot = self._slots[index]
            # Written ahead: after a crash the ledger holds at least what the chat shows (all
            # of it the model's words), so the note never shortens a reply.
            await self.repo.record(
                self.bot_id,
                self.chat_id,
                cause,
                message_id=slot.message_id,
                text=chunk.text,
                entities=entities,
                now=_now(),
            )
            shown = await self.api.edit(self.chat_id, slot.message_id, chunk.text, entities)
            slot.text, slot.entities = chunk.text, entities
            if shown.entities == entities:
                return
        else:
            existing = await self.repo.claim(
                self.bot_id,
                self.chat_id,
                cause,
                kind=REPLY,
                ref=self.request_id,
                text=chunk.text,
                now=_now(),
            )
            if existing is not None and existing.message_id is not None:
                self._slots.append(_Slot(existing.message_id, existing.text, existing.entities))
                return
            try:
                shown = await self.api.send(self.chat_id, chunk.text, entities)
            except BaseException:
                await self.repo.release(self.bot_id, self.chat_id, cause)
                raise
            self._slots.append(_Slot(shown.message_id, chunk.text, entities))
        await self.repo.record(
            self.bot_id,
            self.chat_id,
            cause,
            message_id=shown.message_id,
            text=shown.text,
            entities=shown.entities,
            now=_now(),
        )


async def finish_interrupted(
    api: TelegramApi, repo: TelegramRepository, bot_id: str, chat_id: int, request_id: str
) -> None:
    """A reply cut by a crash: add a note to its last message (or say so), never restart it."""
    rows: list[OutboxItem] = [
        row
        for row in await repo.by_ref(bot_id, REPLY, request_id)
        if row.chat_id == chat_id and row.message_id is not None
    ]
    rows.sort(key=lambda row: chunk_index(row.cause))
    if rows and rows[-1].text.endswith(INTERRUPTED_NOTE):
        return
    if rows:
        last = rows[-1]
        text = f"{last.text}\n\n{INTERRUPTED_NOTE}"
        assert last.message_id is not None
        shown = await api.edit(chat_id, last.message_id, text, last.entities)
        await repo.record(
            bot_id,
            chat_id,
            last.cause,
            message_id=last.message_id,
            text=shown.text,
            entities=shown.entities,
            now=_now(),
        )
        return
    cause = f"reply:{request_id}:interrupted"
    if await repo.claim(
        bot_id, chat_id, cause, kind=REPLY, ref=None, text=INTERRUPTED_NOTE, now=_now()
    ):
        return
    note = "⚠️ The gateway restarted before I could answer; please send your message again."
    shown = await api.send(chat_id, note)
    await repo.record(
        bot_id,
        chat_id,
        cause,
        message_id=shown.message_id,
        text=note,
        entities=None,
        now=_now(),
    )
