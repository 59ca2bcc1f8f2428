"""An OpenAI-compatible model server that streams its reply at a set pace, and can pause.

The Telegram tests need what `FakeOpenAI` does not do: tokens that arrive over seconds (to see
edits paced per chat) and a stream that stops half-way (to kill the gateway mid-reply). Each
chat completions request takes the next scripted `PacedReply`; the server streams its deltas
`gap_s` apart and, after `hold_after` deltas, waits until `release()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class PacedReply:
    deltas: tuple[str, ...]
    gap_s: float = 0.0
    hold_after: int | None = None

    @property
    def text(self) -> str:
        return "".join(self.deltas)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class PacedModel:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        #: monotonic time at which the last delta of each reply was sent
        self.last_delta_at: list[float] = []
        self.held = asyncio.Event()
        self._release = asyncio.Event()
        self._queue: deque[PacedReply] = deque()
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @property
    def base_url(self) -> str:
        assert self._port is not None, "PacedModel is not running"
        return f"http://127.0.0.1:{self._port}/v1"

    def script(self, *replies: PacedReply) -> None:
        self._queue.extend(replies)

    def release(self) -> None:
        self._release.set()

    async def __aenter__(self) -> PacedModel:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, lifespan="off", log_config=None, access_log=False, ws="none"
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await self._server.listening.wait()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        assert self._server is not None
        assert self._task is not None
        self._server.should_exit = True
        await self._task

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        reply = self._queue.popleft() if self._queue else PacedReply(("ok",))
        return StreamingResponse(
            self._events(reply, str(body["model"])), media_type="text/event-stream"
        )

    async def _events(self, reply: PacedReply, model: str) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data = {
                "id": "chatcmpl-paced",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for index, delta in enumerate(reply.deltas):
            if reply.hold_after is not None and index == reply.hold_after:
                self.held.set()
                await self._release.wait()
            if index and reply.gap_s:
                await asyncio.sleep(reply.gap_s)
            yield chunk({"content": delta})
        self.last_delta_at.append(time.monotonic())
        yield chunk({}, "stop")
        yield "data: [DONE]\n\n"
