"""`GatewayClient`: the async Python client for the Hearth protocol.

One reader task owns the socket: it resolves the future of each reply by `id` and queues server
events for `events()`. When the connection drops, waiting requests fail with
`ConnectionLostError` (they may or may not have run), and with `reconnect=True` the client dials
again with exponential backoff from 1 s to 30 s and repeats the handshake, then its
subscriptions (`subscribe`), so a following client keeps receiving what it asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, overload

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from hearth import __version__
from hearth.client.errors import (
    ConnectionLostError,
    GatewayError,
    GatewayUnavailableError,
    RequestTimeoutError,
    UnexpectedReplyError,
)
from hearth.datadir import default_data_dir, pid_alive, read_runtime, read_token
from hearth.protocol import (
    PROTOCOL_VERSION,
    ClientInfo,
    ClientMessage,
    Error,
    Event,
    Hello,
    HelloOk,
    Reply,
    ServerMessage,
    parse_server,
)
from hearth.protocol.messages.subscriptions import (
    Subscribe,
    Subscribed,
    SubscriptionFilter,
    Unsubscribe,
    Unsubscribed,
)

log = logging.getLogger("hearth.client")

R = TypeVar("R", bound=Reply)

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0


def ws_url(base: str) -> str:
    """Accept http(s)://host:port or ws(s)://host:port[/ws] and return the WebSocket URL."""
    url = base.rstrip("/")
    if url.startswith("http://"):
        url = "ws://" + url[len("http://") :]
    elif url.startswith("https://"):
        url = "wss://" + url[len("https://") :]
    return url if url.endswith("/ws") else url + "/ws"


class GatewayClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        client_name: str = "hearth-python",
        client_version: str = __version__,
        reconnect: bool = False,
        request_timeout_s: float = 30.0,
        max_frame_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.url = ws_url(url)
        self._token = token
        self._client = ClientInfo(name=client_name, version=client_version)
        self.reconnect = reconnect
        self.request_timeout_s = request_timeout_s
        self._max_frame = max_frame_bytes
        self._ids = itertools.count(1)
        self._hello_ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[ServerMessage]] = {}
        self._events: asyncio.Queue[ServerMessage | None] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self.hello: HelloOk | None = None
        #: Subscriptions to repeat after a reconnect: our handle -> (request, server's id).
        self._subscriptions: dict[str, tuple[Subscribe, str]] = {}

    @classmethod
    def from_data_dir(cls, data_dir: Path | None = None, **kwargs: Any) -> GatewayClient:
        """Find the running gateway's URL and token in the data directory."""
        directory = data_dir or default_data_dir()
        runtime = read_runtime(directory / "runtime.json")
        if not pid_alive(runtime.pid):
            raise GatewayUnavailableError(
                f"the gateway (pid {runtime.pid}) is not running any more: start it with "
                "`hearth serve`"
            )
        return cls(runtime.url, read_token(directory / "gateway.token"), **kwargs)

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> HelloOk:
        """Open the socket and authenticate; raises GatewayError on a refused hello."""
        hello = await self._dial()
        self._reader = asyncio.create_task(self._read_loop(), name="hearth-client-reader")
        return hello

    async def _dial(self) -> HelloOk:
        try:
            ws = await connect(
                self.url, max_size=self._max_frame, open_timeout=10, compression=None
            )
        except (OSError, InvalidURI, InvalidStatus, TimeoutError) as exc:
            raise GatewayUnavailableError(
                f"cannot reach the gateway at {self.url} ({exc}); is it running? "
                "Start it with `hearth serve`"
            ) from None
        msg_id = f"hello-{next(self._hello_ids)}"
        hello = Hello(id=msg_id, protocol=PROTOCOL_VERSION, token=self._token, client=self._client)
        try:
            await ws.send(hello.to_frame())
            reply = parse_server(await asyncio.wait_for(ws.recv(), timeout=10))
        except (ConnectionClosed, TimeoutError) as exc:
            await ws.close()
            raise ConnectionLostError(
                f"the gateway closed the connection during hello: {exc}"
            ) from None
        if isinstance(reply, Error):
            await ws.close()
            raise GatewayError(reply.code, reply.message, reply.details)
        if not isinstance(reply, HelloOk):
            await ws.close()
            raise UnexpectedReplyError(f"expected hello.ok, got {reply.type}")
        self._ws = ws
        self.hello = reply
        self._connected.set()
        return reply

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_pending("the client was closed")
        self._events.put_nowait(None)

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- reading ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for raw in ws:
                    self._deliver(raw)
            except ConnectionClosed:
                pass
            self._connected.clear()
            self._fail_pending(
                f"connection to the gateway lost (code {ws.close_code}); the request may or "
                "may not have been carried out"
            )
            if self._closing or not self.reconnect:
                self._events.put_nowait(None)
                return
            if not await self._redial():
                self._events.put_nowait(None)
                return

    async def _redial(self) -> bool:
        delay = BACKOFF_START_S
        while not self._closing:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            try:
                await self._dial()
                await self._resubscribe()
                log.info("reconnected to %s", self.url)
                return True
            except GatewayError as exc:
                log.error("gateway refused the reconnect: %s", exc)
                return False
            except (GatewayUnavailableError, ConnectionLostError) as exc:
                log.info("reconnect failed (%s); next try in %.0f s", exc, delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
        return False

    async def _resubscribe(self) -> None:
        """Repeat every subscription on the new connection (before anything else is read)."""
        ws = self._ws
        assert ws is not None
        for handle, (request, _old) in list(self._subscriptions.items()):
            try:
                await ws.send(request.to_frame())
                async with asyncio.timeout(10):
                    while True:
                        raw = await ws.recv()
                        reply = parse_server(raw)
                        if getattr(reply, "id", None) == request.id:
                            break
                        self._deliver(raw)
            except (ConnectionClosed, TimeoutError) as exc:
                raise ConnectionLostError(f"lost while subscribing again: {exc}") from None
            if isinstance(reply, Subscribed):
                self._subscriptions[handle] = (request, reply.subscription_id)
            else:
                log.error("the gateway refused a subscription after reconnecting: %s", reply)
                del self._subscriptions[handle]

    def _deliver(self, raw: str | bytes) -> None:
        try:
            message = parse_server(raw)
        except ValueError as exc:
            log.error("ignoring a frame that does not match the protocol: %s", exc)
            return
        msg_id = getattr(message, "id", None)
        if isinstance(message, Event) or (
            isinstance(message, Error) and message.request_id is not None and msg_id is None
        ):
            self._events.put_nowait(message)
        elif msg_id is not None and msg_id in self._pending:
            future = self._pending.pop(msg_id)
            if not future.done():
                future.set_result(message)
        elif isinstance(message, Error):
            log.warning("gateway error: %s %s", message.code, message.message)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionLostError(reason))

    # -- requests ---------------------------------------------------------------------------

    def next_id(self) -> str:
        return f"r{next(self._ids)}"

    @overload
    async def request(self, message: ClientMessage) -> Reply: ...

    @overload
    async def request(self, message: ClientMessage, expect: type[R]) -> R: ...

    async def request(self, message: ClientMessage, expect: type[Reply] = Reply) -> Reply:
        """Send one request and return its reply.

        Raises GatewayError when the gateway answers `error`, UnexpectedReplyError when the
        reply is not an `expect`, ConnectionLostError when the connection drops first.
        """
        reply = await self.call(message)
        if isinstance(reply, Error):
            raise GatewayError(reply.code, reply.message, reply.details)
        if not isinstance(reply, expect):
            raise UnexpectedReplyError(f"{message.type} got {reply.type}, not {expect.__name__}")
        return reply

    async def call(self, message: ClientMessage) -> ServerMessage:
        """Send one request and return whatever single reply comes back, errors included."""
        if not self._connected.is_set():
            if not self.reconnect or self._closing:
                raise ConnectionLostError("not connected to the gateway")
            try:
                await asyncio.wait_for(self._connected.wait(), timeout=self.request_timeout_s)
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the gateway did not come back within {self.request_timeout_s:.0f} s"
                ) from None
        ws = self._ws
        assert ws is not None
        if message.id in self._pending:
            raise ValueError(f"request id {message.id!r} is already waiting for a reply")
        future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
        self._pending[message.id] = future
        try:
            await ws.send(message.to_frame())
            return await asyncio.wait_for(future, timeout=self.request_timeout_s)
        except TimeoutError:
            raise RequestTimeoutError(
                f"no reply to {message.type} within {self.request_timeout_s:.0f} s"
            ) from None
        except ConnectionClosed:
            raise ConnectionLostError("connection to the gateway lost while sending") from None
        finally:
            self._pending.pop(message.id, None)

    async def subscribe(
        self,
        topics: list[str],
        *,
        schedule_ids: list[str] | None = None,
        execution_ids: list[str] | None = None,
        workflow_ids: list[str] | None = None,
    ) -> str:
        """Receive these event types (`"*"`: all), optionally only about some ids; returns a
        handle for `unsubscribe` that stays valid across reconnects."""
        given = schedule_ids is not None or execution_ids is not None or workflow_ids is not None
        request = Subscribe(
            id=self.next_id(),
            topics=topics,
            filter=SubscriptionFilter(
                schedule_ids=schedule_ids, execution_ids=execution_ids, workflow_ids=workflow_ids
            )
            if given
            else None,
        )
        reply = await self.request(request, Subscribed)
        self._subscriptions[reply.subscription_id] = (request, reply.subscription_id)
        return reply.subscription_id

    async def unsubscribe(self, handle: str) -> bool:
        """Stop a subscription made with `subscribe`; False when there was none."""
        entry = self._subscriptions.pop(handle, None)
        if entry is None:
            return False
        reply = await self.request(
            Unsubscribe(id=self.next_id(), subscription_id=entry[1]), Unsubscribed
        )
        return reply.removed

    async def events(self) -> AsyncIterator[ServerMessage]:
        """Server events in arrival order; ends when the client closes for good."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)
                return
            yield event

    async def next_event(self, type_: str, timeout_s: float = 10.0) -> ServerMessage:
        """The next event of one type, skipping others (handy in scripts and tests)."""
        async with asyncio.timeout(timeout_s):
            async for event in self.events():
                if event.type == type_:
                    return event
        raise ConnectionLostError(f"the client closed before a {type_} event arrived")


__all__ = ["GatewayClient", "ws_url"]
