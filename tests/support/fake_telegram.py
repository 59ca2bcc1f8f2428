"""A fake Telegram Bot API server for tests (Starlette on a loopback port the OS picks).

The gateway's real Telegram code (python-telegram-bot over HTTPX) is pointed at it with
`telegram.api_base_url`, so request encoding, error mapping (409, 429 `retry_after`, "message
is not modified", "can't parse entities") and long polling are exercised for real. It keeps
what a chat would show: every message the bot sent, with its edit history.

Usage::

    async with FakeTelegram() as fake:
        settings = {"telegram": {"enabled": True, "api_base_url": fake.base_url}}
        env = {"HEARTH_TELEGRAM__TOKEN": fake.token}
        fake.push_message(42, "hello")
        await fake.wait_for(lambda: fake.chat(42))

Scripting: `fail_next(method, ...)` answers the next call of a method with an error; `conflict`
answers getUpdates with 409 while set; `stalled` makes getUpdates hang while set; `hold(method)`
keeps calls of a method waiting until `release(method)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BOT_ID = 7000001
TOKEN = f"{BOT_ID}:AAtest-token-for-the-fake-server"
BOT_USERNAME = "hearth_test_bot"
MAX_TEXT_UTF16 = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
#: Parameters that python-telegram-bot sends JSON-encoded inside form fields.
JSON_FIELDS = {"entities", "reply_markup", "allowed_updates", "commands", "scope"}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float


@dataclass
class Failure:
    code: int
    description: str
    retry_after: int | None = None


@dataclass
class SentMessage:
    """A message the bot sent, as the chat shows it now, with every version it had."""

    chat_id: int
    message_id: int
    text: str
    entities: list[dict[str, Any]] | None
    reply_markup: dict[str, Any] | None
    versions: list[str] = field(default_factory=list)
    edit_times: list[float] = field(default_factory=list)
    deleted: bool = False

    @property
    def buttons(self) -> list[dict[str, Any]]:
        if not self.reply_markup:
            return []
        return [b for row in self.reply_markup.get("inline_keyboard", []) for b in row]


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()
        self.exit_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)
        await self.exit_requested.wait()

    def request_exit(self) -> None:
        self.should_exit = True
        self.exit_requested.set()


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: list[SentMessage] = []
        self.commands: list[dict[str, Any]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.conflict = False
        self._stalled = False
        self._updates: list[dict[str, Any]] = []
        self._confirmed = 0
        self._update_ids = itertools.count(1000)
        self._user_message_ids = itertools.count(1)
        self._bot_message_ids: dict[int, Iterator[int]] = {}
        self._callback_ids = itertools.count(1)
        self._failures: dict[str, deque[Failure]] = {}
        self._held: dict[str, asyncio.Event] = {}
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._handle, methods=["POST"])])

    # -- test-facing API -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What `telegram.api_base_url` should be (requests go to {base}/bot{token}/{method})."""
        if self._port is None:
            raise RuntimeError("FakeTelegram is not running")
        return f"http://127.0.0.1:{self._port}"

    def push_message(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        name: str = "Ada",
        reply_to_bot: bool = False,
        entities: list[dict[str, Any]] | None = None,
    ) -> int:
        """A user writes to the bot; returns the update id."""
        chat = {"id": chat_id if chat_id is not None else user_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = name
        else:
            chat["title"] = "A group"
        message: dict[str, Any] = {
            "message_id": next(self._user_message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": name, "username": name.lower()},
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if reply_to_bot:
            message["reply_to_message"] = {
                "message_id": 1,
                "date": int(time.time()),
                "chat": chat,
                "from": self._bot_user(),
                "text": "earlier",
            }
        return self._push({"message": message})

    def push_callback(self, user_id: int, message: SentMessage, data: str) -> int:
        """A user presses an inline button of `message`."""
        query = {
            "id": str(next(self._callback_ids)),
            "from": {"id": user_id, "is_bot": False, "first_name": "Ada"},
            "message": self._message_json(message),
            "chat_instance": "1",
            "data": data,
        }
        return self._push({"callback_query": query})

    @property
    def stalled(self) -> bool:
        return self._stalled

    @stalled.setter
    def stalled(self, value: bool) -> None:
        """While True, getUpdates never answers (as a stuck network path would)."""
        self._stalled = value
        asyncio.get_running_loop().create_task(self._notify())

    def fail_next(
        self, method: str, code: int, description: str, retry_after: int | None = None
    ) -> None:
        self._failures.setdefault(method, deque()).append(Failure(code, description, retry_after))

    def hold(self, method: str) -> None:
        self._held[method] = asyncio.Event()

    def release(self, method: str) -> None:
        event = self._held.pop(method, None)
        if event is not None:
            event.set()

    def chat(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.messages if m.chat_id == chat_id and not m.deleted]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by a getUpdates offset."""
        return len([u for u in self._updates if u["update_id"] >= self._confirmed])

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: bool(predicate()))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        listening = asyncio.create_task(self._server.listening.wait())
        try:
            await asyncio.wait({self._task, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listening.cancel()
        if not self._server.listening.is_set():
            await self._task
            raise RuntimeError("fake Telegram server exited before listening")

    async def stop(self) -> None:
        if self._task is None or self._server is None:
            return
        self._closing.set()
        for event in self._held.values():
            event.set()
        await self._notify()
        self._server.request_exit()
        task, self._task = self._task, None
        await task
        self._port = None

    # -- internals ---------------------------------------------------------------------------

    def _push(self, body: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **body})
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Hearth", "username": BOT_USERNAME}

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": {"id": message.chat_id, "type": "private"},
            "from": self._bot_user(),
            "text": message.text,
        }
        if message.entities:
            data["entities"] = message.entities
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        return data

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = await request.json()
            return dict(body) if isinstance(body, dict) else {}
        # python-telegram-bot posts x-www-form-urlencoded fields when it sends no files.
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        return {
            key: json.loads(values[-1]) if key in JSON_FIELDS else values[-1]
            for key, values in form.items()
        }

    @staticmethod
    def _error(failure: Failure) -> JSONResponse:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": failure.code,
            "description": failure.description,
        }
        if failure.retry_after is not None:
            body["parameters"] = {"retry_after": failure.retry_after}
        return JSONResponse(body, status_code=failure.code)

    async def _handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        if request.path_params["token"] != self.token:
            return self._error(Failure(401, "Unauthorized"))
        params = await self._params(request)
        self.calls.append(Call(method, params, time.monotonic()))
        held = self._held.get(method)
        if held is not None:
            await held.wait()
        queue = self._failures.get(method)
        if queue:
            failure = queue.popleft()
            await self._notify()
            return self._error(failure)
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            return self._error(Failure(404, f"Not Found: method {method} is not faked"))
        result = await handler(params)
        await self._notify()
        if isinstance(result, Failure):
            return self._error(result)
        return JSONResponse({"ok": True, "result": result})

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return {**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False}

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.conflict:
            return Failure(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one "
                "bot instance is running",
            )
        offset = int(params.get("offset") or 0)
        if offset:
            self._confirmed = max(self._confirmed, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            return bool(self._updates) or self._closing.is_set()

        while True:
            if self.stalled:
                # Never answer while stalled (the client's read timeout ends the call).
                async with self._changed:
                    await self._changed.wait_for(lambda: not self.stalled or self._closing.is_set())
                if self._closing.is_set():
                    return []
                continue
            if ready() or time.monotonic() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())), self._changed:
                    await self._changed.wait_for(lambda: ready() or self.stalled)
        return self._updates[:limit]

    def _check_text(self, text: str, entities: list[dict[str, Any]] | None) -> Failure | None:
        if not text.strip():
            return Failure(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT_UTF16:
            return Failure(400, "Bad Request: message is too long")
        size = utf16_len(text)
        for entity in entities or []:
            offset, length = int(entity.get("offset", -1)), int(entity.get("length", 0))
            if offset < 0 or length <= 0 or offset + length > size:
                return Failure(
                    400,
                    f"Bad Request: can't parse entities: entity {entity} is out of the text",
                )
        return None

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        text = str(params.get("text", ""))
        entities = params.get("entities")
        failure = self._check_text(text, entities)
        if failure is not None:
            return failure
        ids = self._bot_message_ids.setdefault(chat_id, itertools.count(500))
        message = SentMessage(
            chat_id, next(ids), text, entities or None, params.get("reply_markup"), [text]
        )
        self.messages.append(message)
        return self._message_json(message)

    def _find(self, params: dict[str, Any]) -> SentMessage | None:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        for message in self.messages:
            if message.chat_id == chat_id and message.message_id == message_id:
                return None if message.deleted else message
        return None

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        if message is None:
            return Failure(400, "Bad Request: message to edit not found")
        text = str(params.get("text", ""))
        entities = params.get("entities") or None
        markup = params.get("reply_markup")
        failure = self._check_text(text, entities)
        if failure is not None:
            return failure
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            return Failure(400, NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.versions.append(text)
        message.edit_times.append(time.monotonic())
        return self._message_json(message)

    async def _m_deleteMessage(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        if message is None:
            return Failure(400, "Bad Request: message to delete not found")
        message.deleted = True
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        self.callback_answers.append(params)
        return True

    async def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands = list(params.get("commands") or [])
        return True

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True
