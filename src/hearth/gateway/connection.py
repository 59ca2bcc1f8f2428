"""One authenticated WebSocket peer: its identity, its outbound queue and its event counter.

Outbound frames go through a per-connection queue drained by one writer task. Senders never
await the network, so a client that stops reading fills only its own queue.

A client that merely falls behind is not punished for it: high-rate status events
(`workflow.status` per execution, `schedule.run` per schedule) still waiting in its queue are
replaced by the newer one instead of queueing both, so a watcher of a busy scheduler gets the
latest state of each schedule at the pace it reads. Only a client that stops reading is closed
(4008): its queue of other frames fills, or one write stays blocked for `stall_timeout_s`.
`seq` is stamped when a frame is written, so coalescing never leaves gaps.

When nothing is queued and the socket can take more (`GatewayWebSocketProtocol.can_write`), a
frame is written at once by whoever sends it, with no hop through the writer task; the writer
only drains what queued up while the transport was above its high-water mark, several frames per
`transport.write`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketState

from hearth.gateway.subscriptions import (
    DEFAULT_TOPICS,
    REQUEST_TOPICS,
    EventInterest,
    EventSubscription,
    OutgoingEvent,
)
from hearth.gateway.wsprotocol import GatewayWebSocketProtocol
from hearth.metrics import Metrics
from hearth.protocol import ClientInfo, CloseCode, Error, ServerMessage
from hearth.protocol.messages.subscriptions import SubscriptionFilter

log = logging.getLogger("hearth.gateway.connection")

#: Frames the writer joins into one `transport.write` at most.
WRITE_BATCH = 64
#: Queued coalescable events (one per distinct execution or schedule) may exceed the frame
#: limit by this factor before the connection counts as stuck; a memory bound, no more.
COALESCED_FACTOR = 16


def encode(message: ServerMessage) -> str:
    return message.model_dump_json(by_alias=True, exclude_none=True)


def encode_event(message: ServerMessage) -> str:
    """An event's JSON without `seq` (added per connection by `with_seq`)."""
    return message.model_dump_json(by_alias=True, exclude_none=True, exclude={"seq"})


def with_seq(body: str, seq: int) -> str:
    return f'{body[:-1]},"seq":{seq}}}'


class _Out:
    """A queued frame: a finished reply, or an event body still waiting for its `seq`."""

    __slots__ = ("event", "key", "message", "text")

    def __init__(
        self,
        text: str,
        event: bool,
        key: tuple[str, str] | None = None,
        message: ServerMessage | None = None,
    ) -> None:
        self.text = text
        self.event = event
        self.key = key
        self.message = message


def _merged(older: ServerMessage | None, newer: ServerMessage) -> tuple[str, ServerMessage]:
    """The newer status event, carrying the step results of the one it replaces too."""
    old_steps = getattr(older, "step_results", None)
    if old_steps:
        new_steps = getattr(newer, "step_results", None) or []
        newer = newer.model_copy(update={"step_results": [*old_steps, *new_steps]})
        return encode_event(newer), newer
    return "", newer


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        connection_id: str,
        remote: str,
        queue_size: int,
        stall_timeout_s: float = 30.0,
    ) -> None:
        self.websocket = websocket
        self.id = connection_id
        self.remote = remote
        self.client: ClientInfo | None = None
        self.interest = EventInterest(connection_id)
        self._limit = queue_size
        self._stall = stall_timeout_s
        self._out: deque[_Out] = deque()
        self._frames = 0  # queued frames that cannot be coalesced
        self._latest: dict[tuple[str, str], _Out] = {}
        self._wake: asyncio.Future[None] | None = None
        self._draining = False
        #: True while a write waits for the peer to read (the transport's buffer is full):
        #: the client is behind, and status events waiting here may be coalesced.
        self._blocked = False
        self._seq = 0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.coalesced = 0
        #: Frame and error counts go here; the endpoint sets it.
        self.metrics: Metrics | None = None
        #: The protocol object for direct writes, once the endpoint has attached to it.
        self.wire: GatewayWebSocketProtocol | None = None

    def send(self, message: ServerMessage) -> bool:
        """Queue a reply; False when the connection is gone or was dropped for being slow."""
        if self.metrics is not None and isinstance(message, Error):
            self.metrics.errors.labels(message.code).inc()
        return self._push(_Out(encode(message), False))

    def _write_now(self, item: _Out) -> bool:
        """Write `item` at once if nothing waits before it and the socket takes it."""
        wire = self.wire
        if self._out or self._blocked or wire is None or not wire.can_write:
            return False
        if item.event:
            self._seq += 1
            wire.write_texts([with_seq(item.text, self._seq)])
        else:
            wire.write_texts([item.text])
        if self.metrics is not None:
            self.metrics.frame_out()
        return True

    def send_event(self, message: ServerMessage) -> bool:
        """Queue one event for this connection alone (the fanout uses `push_event`)."""
        return self._push(_Out(encode_event(message), True))

    def push_event(self, event: OutgoingEvent) -> bool:
        """Queue an event encoded once for all receivers; coalesce it if an older status of
        the same execution or schedule is still waiting here."""
        if self.closed.is_set():
            return False
        key = event.coalesce_key
        if key is not None:
            waiting = self._latest.get(key)
            if waiting is not None and (self._blocked or len(self._out) >= self._limit // 2):
                text, message = _merged(waiting.message, event.message)
                waiting.text = text or event.body
                waiting.message = message
                self.coalesced += 1
                if self.metrics is not None:
                    self.metrics.event_dropped("coalesced")
                return True
            item = _Out(event.body, True, key, event.message)
            if self._write_now(item):
                return True
            if len(self._out) >= self._limit * COALESCED_FACTOR:
                return self._stuck()
            self._latest[key] = item
            self._out.append(item)
            self._wakeup()
            return True
        return self._push(_Out(event.body, True))

    def _push(self, item: _Out) -> bool:
        if self.closed.is_set():
            return False
        if self._write_now(item):
            return True
        if self._frames >= self._limit:
            return self._stuck()
        self._frames += 1
        self._out.append(item)
        self._wakeup()
        return True

    def _stuck(self) -> bool:
        if self.metrics is not None:
            self.metrics.event_dropped("slow_consumer", len(self._out) + 1)
        log.warning("client is not reading; disconnecting (queue of %d full)", self._limit)
        self.abort(CloseCode.SLOW_CONSUMER)
        return False

    def _wakeup(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    @property
    def queued(self) -> int:
        return len(self._out)

    def abort(self, code: int) -> None:
        """Stop sending at once (frames still queued are dropped) and close with `code`."""
        if self.closed.is_set():
            return
        self.close_code = code
        self.closed.set()
        self._wakeup()

    def _next_frame(self) -> str:
        item = self._out.popleft()
        if item.key is not None:
            if self._latest.get(item.key) is item:
                del self._latest[item.key]
        else:
            self._frames -= 1
        if not item.event:
            return item.text
        self._seq += 1
        return with_seq(item.text, self._seq)

    async def run_writer(self) -> None:
        """Drain the queue to the socket until closed (or drained after `close`)."""
        loop = asyncio.get_running_loop()
        while not self.closed.is_set():
            wire = self.wire
            if wire is not None and self._out:
                if not await self._drain_direct(wire):
                    return
                continue
            if not self._out:
                if self._draining:
                    return
                self._wake = loop.create_future()
                try:
                    await self._wake
                finally:
                    self._wake = None
                continue
            frame = self._next_frame()
            self._blocked = True
            try:
                async with asyncio.timeout(self._stall):
                    await self.websocket.send_text(frame)
            except TimeoutError:
                log.warning("client read nothing for %.0f s; disconnecting", self._stall)
                self.abort(CloseCode.SLOW_CONSUMER)
                return
            finally:
                self._blocked = False
            if self.metrics is not None:
                self.metrics.frame_out()

    async def _drain_direct(self, wire: GatewayWebSocketProtocol) -> bool:
        """Write queued frames in batches once the transport takes them; False when done."""
        if not wire.writable.is_set():
            self._blocked = True
            try:
                async with asyncio.timeout(self._stall):
                    await wire.writable.wait()
            except TimeoutError:
                log.warning("client read nothing for %.0f s; disconnecting", self._stall)
                self.abort(CloseCode.SLOW_CONSUMER)
                return False
            finally:
                self._blocked = False
            if self.closed.is_set():
                return False
        if not wire.can_write:
            return False  # closing or gone: nothing more will be written
        batch = [self._next_frame() for _ in range(min(len(self._out), WRITE_BATCH))]
        wire.write_texts(batch)
        if self.metrics is not None:
            self.metrics.frame_out(len(batch))
        return True

    async def close(self, code: int, writer: asyncio.Task[None], reason: str = "") -> None:
        """Let the writer send what is queued (bounded in time), then close with `code`."""
        if not self.closed.is_set():
            self.close_code = code
            self._draining = True
            self._wakeup()
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
    #: How many subscriptions (of all connections) name each topic, "*" included, so an event
    #: type nobody subscribed to is dropped before it is even validated.
    _topics: Counter[str] = field(default_factory=Counter)

    def add(self, connection: Connection) -> None:
        self._by_id[connection.id] = connection

    def remove(self, connection: Connection) -> None:
        if self._by_id.pop(connection.id, None) is not None:
            for sub in connection.interest.subscriptions():
                self._topics.subtract(sub.topics)

    def subscribe(
        self, connection: Connection, topics: list[str], filter_: SubscriptionFilter | None
    ) -> EventSubscription:
        sub = connection.interest.add(topics, filter_)
        if connection.id in self._by_id:
            self._topics.update(sub.topics)
        return sub

    def unsubscribe(self, connection: Connection, subscription_id: str) -> bool:
        sub = connection.interest.remove(subscription_id)
        if sub is None:
            return False
        if connection.id in self._by_id:
            self._topics.subtract(sub.topics)
        return True

    def may_want(self, event_type: str) -> bool:
        """False when no connection can want an event of this type (cheap, at publish time)."""
        if not self._by_id:
            return False
        if event_type in DEFAULT_TOPICS or event_type in REQUEST_TOPICS:
            return True
        return self._topics["*"] > 0 or self._topics[event_type] > 0

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Connection]:
        return iter(tuple(self._by_id.values()))

    def deliver(self, event: OutgoingEvent) -> int:
        """Queue `event` on every connection that wants it; how many did."""
        sent = 0
        for connection in self._by_id.values():
            interest = connection.interest
            if interest.wants(event) and connection.push_event(event):
                interest.delivered(event)
                sent += 1
        return sent
