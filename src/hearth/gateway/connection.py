"""One authenticated WebSocket peer: its identity, its outbound queue and its event counter.

Outbound frames go through a bounded queue drained by one writer task. Senders never await the
network, so a client that stops reading fills only its own queue; when that is full the client is
disconnected instead of slowing the gateway or anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketState

from hearth.metrics import Metrics
from hearth.protocol import ClientInfo, CloseCode, Error, ServerMessage

log = logging.getLogger("hearth.gateway.connection")


def encode(message: ServerMessage) -> str:
    return message.model_dump_json(by_alias=True, exclude_none=True)


class Connection:
    def __init__(
        self, websocket: WebSocket, connection_id: str, remote: str, queue_size: int
    ) -> None:
        self.websocket = websocket
        self.id = connection_id
        self.remote = remote
        self.client: ClientInfo | None = None
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(queue_size)
        self._seq = 0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        #: Frame and error counts go here; the endpoint sets it.
        self.metrics: Metrics | None = None

    def send(self, message: ServerMessage) -> bool:
        """Queue a reply; False when the connection is gone or was dropped for being slow."""
        if self.metrics is not None and isinstance(message, Error):
            self.metrics.errors.labels(message.code).inc()
        return self._enqueue(encode(message))

    def send_event(self, event: ServerMessage) -> bool:
        """Queue a server event, stamping the next per-connection `seq`."""
        if self.closed.is_set():
            return False
        self._seq += 1
        event.seq = self._seq  # type: ignore[attr-defined]
        return self._enqueue(encode(event))

    def _enqueue(self, frame: str) -> bool:
        if self.closed.is_set():
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            if self.metrics is not None:
                self.metrics.event_dropped("slow_consumer", self._queue.qsize() + 1)
            log.warning(
                "client is not reading; disconnecting (queue of %d full)", self._queue.maxsize
            )
            self.abort(CloseCode.SLOW_CONSUMER)
            return False
        return True

    def abort(self, code: int) -> None:
        """Stop sending at once (frames still queued are dropped) and close with `code`."""
        if self.closed.is_set():
            return
        self.close_code = code
        self.closed.set()

    async def run_writer(self) -> None:
        """Drain the queue to the socket until a `None` sentinel arrives or the peer is gone."""
        while not self.closed.is_set():
            frame = await self._queue.get()
            if frame is None:
                return
            await self.websocket.send_text(frame)
            if self.metrics is not None:
                self.metrics.frame_out()

    async def close(self, code: int, writer: asyncio.Task[None], reason: str = "") -> None:
        """Let the writer send what is queued (bounded in time), then close with `code`."""
        if not self.closed.is_set():
            self.close_code = code
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
            with contextlib.suppress(TimeoutError, Exception):
                async with asyncio.timeout(2):
                    await asyncio.shield(writer)
            self.closed.set()
        writer.cancel()
        await close_quietly(self.websocket, self.close_code or code, reason)


async def close_quietly(websocket: WebSocket, code: int, reason: str = "") -> None:
    if WebSocketState.DISCONNECTED in (websocket.application_state, websocket.client_state):
        return
    try:
        async with asyncio.timeout(5):
            await websocket.close(code, reason)
    except (TimeoutError, RuntimeError, OSError):
        pass


@dataclass
class ConnectionRegistry:
    """The authenticated connections of this gateway process."""

    _by_id: dict[str, Connection] = field(default_factory=dict)

    def add(self, connection: Connection) -> None:
        self._by_id[connection.id] = connection

    def remove(self, connection: Connection) -> None:
        self._by_id.pop(connection.id, None)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Connection]:
        return iter(tuple(self._by_id.values()))

    def broadcast(self, event: ServerMessage) -> int:
        """Send a copy of `event` to every connection (each gets its own `seq`)."""
        sent = 0
        for connection in self:
            if connection.send_event(event.model_copy()):
                sent += 1
        return sent
