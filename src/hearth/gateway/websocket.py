"""The `/ws` endpoint: origin check, hello handshake, then concurrent request handling."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections import deque
from typing import Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketState

from hearth.events import current_origin
from hearth.gateway.connection import Connection, encode
from hearth.gateway.dispatch import HandlerContext, Router
from hearth.gateway.frames import invalid_message, request_id_of
from hearth.gateway.logs import connection_id_var
from hearth.gateway.state import GatewayState
from hearth.gateway.wsprotocol import GatewayWebSocketProtocol, wire_of
from hearth.protocol import (
    PROTOCOL_VERSION,
    ClientMessage,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    HelloOk,
    ServerInfo,
    ServerMessage,
    parse_client,
)
from hearth.store.audit import Answerer, current_answerer

log = logging.getLogger("hearth.gateway.ws")

_Frame = str | bytes | None


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: Client names (from hello) that mean a channel other than a plain WebSocket program.
CHANNEL_OF_CLIENT = {"hearth-cli": "cli"}


def answerer_of(connection: Connection) -> Answerer:
    """The audit identity of a connection: its client name, channel and address."""
    name = connection.client.name if connection.client else None
    return Answerer(
        client=name, channel=CHANNEL_OF_CLIENT.get(name or "", "ws"), address=connection.remote
    )


def own_origins(port: int) -> set[str]:
    """The origins of pages the gateway itself serves on loopback at `port`."""
    return {f"{scheme}://{host}:{port}" for scheme in ("http", "https") for host in LOOPBACK_NAMES}


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """Browsers send `Origin`; only the gateway's own origins and configured ones may connect.

    The `Host` header is never trusted: after DNS rebinding a hostile page at
    `http://evil.example:PORT` reaches 127.0.0.1 with `Host: evil.example:PORT`, so "the
    origin matches Host" would let it in. Own origins are the loopback names at the port the
    gateway listens on. Programs (the CLI, bots) send no Origin and are judged by token alone.
    """
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    server = websocket.scope.get("server")
    port = server[1] if server else None
    own = own_origins(port) if isinstance(port, int) else set()
    return origin.lower().rstrip("/") in own or origin in allowed


def own_ids(connection: Connection, reply: ServerMessage) -> None:
    """A reply naming a chat request or an execution (trigger, approval, cancel) makes its
    later events this connection's, wherever they are published from."""
    request_id = getattr(reply, "request_id", None)
    execution_id = getattr(reply, "execution_id", None)
    if request_id is not None or execution_id is not None:
        connection.interest.own(request_id, execution_id)


def _ignore(_frame: str | bytes) -> None:
    """The frame sink once a connection is closing: later frames are not requests any more."""


class Requests:
    """The requests of one connection on the direct path, from parsed frame to reply.

    Inline handlers answer at once. Others run as tasks, at most `max_in_flight` at a time:
    at the limit, further requests wait here in arrival order and the socket is not read
    (TCP pushes back on the client) until a handler finishes. That backlog holds at most what
    one read of the socket delivered.
    """

    def __init__(
        self,
        endpoint: WebSocketEndpoint,
        connection: Connection,
        wire: GatewayWebSocketProtocol,
        context: contextvars.Context,
    ) -> None:
        self.endpoint = endpoint
        self.connection = connection
        self.wire = wire
        self.context = context
        self.ctx = HandlerContext(connection, endpoint.state)
        self.limit = endpoint.state.settings.limits.max_in_flight
        self.metrics = endpoint.state.metrics
        self.router = endpoint.router
        self.tasks: set[asyncio.Task[None]] = set()
        self.backlog: deque[ClientMessage] = deque()

    def on_frame(self, frame: str | bytes) -> None:
        self.metrics.frame_in()
        try:
            message = self.endpoint.reject(self.connection, frame)
            if message is None:
                return
            if self.router.is_inline(message.type):
                self.context.run(self.endpoint.handle_now, self.ctx, message)
            elif len(self.tasks) < self.limit and not self.backlog:
                self._start(message)
            else:
                self.backlog.append(message)
                self.wire.pause_inbound()
        except Exception:  # a bug here must not take the protocol's data_received down
            log.exception("could not handle a frame")

    def _start(self, message: ClientMessage) -> None:
        task = asyncio.get_running_loop().create_task(
            self.endpoint.handle_later(self.ctx, message), context=self.context.copy()
        )
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        while self.backlog and len(self.tasks) < self.limit:
            self._start(self.backlog.popleft())
        if not self.backlog:
            self.wire.resume_inbound()

    async def finish(self) -> None:
        """Handlers may commit work (a trigger, an approval); let them finish briefly so a
        disconnect never leaves a request half done. Requests still waiting are dropped."""
        self.backlog.clear()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)


class WebSocketEndpoint:
    def __init__(self, state: GatewayState, router: Router, server_name: str = "hearth") -> None:
        self.state = state
        self.router = router
        self.server_name = server_name
        self.features = sorted({"hello", *router.message_types})

    async def handle(self, websocket: WebSocket) -> None:
        if not origin_allowed(websocket, self.state.settings.allowed_origins):
            log.warning("refused WebSocket from origin %s", websocket.headers.get("origin"))
            await websocket.close(code=CloseCode.POLICY_VIOLATION)  # before accept: HTTP 403
            return
        await websocket.accept()
        remote = websocket.client.host if websocket.client else "unknown"
        connection = Connection(
            websocket,
            "c-" + secrets.token_hex(6),
            remote,
            self.state.settings.limits.outbound_queue,
            self.state.settings.limits.stall_timeout_s,
        )
        connection.metrics = self.state.metrics
        connection_id_var.set(connection.id)
        writer = asyncio.create_task(connection.run_writer(), name=f"{connection.id}-writer")
        reader = asyncio.create_task(self._read(connection), name=f"{connection.id}-reader")
        aborted = asyncio.create_task(connection.closed.wait())
        try:
            await asyncio.wait({reader, writer, aborted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.state.connections.remove(connection)
            for task in (reader, aborted):
                task.cancel()
            if connection.closed.is_set():
                writer.cancel()
            try:
                await connection.close(connection.close_code or 1000, writer)
            except Exception as exc:  # the peer vanished mid-close: one line, no traceback
                log.info("peer gone while closing (%s)", type(exc).__name__)
            log.info("connection closed (code %s)", connection.close_code or 1000)

    async def _receive(self, connection: Connection) -> _Frame:
        message = await connection.websocket.receive()
        if message["type"] == "websocket.disconnect":
            # The real code (1007 bad UTF-8, 1009 too big, the peer's own), for the log line.
            code = message.get("code")
            if connection.close_code is None and isinstance(code, int):
                connection.close_code = code
            return None
        self.state.metrics.frame_in()
        text = message.get("text")
        if text is not None:
            return str(text)
        data = message.get("bytes")
        return bytes(data) if data is not None else b""

    async def _read(self, connection: Connection) -> None:
        if not await self._handshake(connection):
            return
        wire = wire_of(connection.websocket.scope)
        if wire is not None:
            await self._read_direct(connection, wire)
        else:  # under a server other than ours: through the ASGI queue
            await self._read_queued(connection)

    async def _read_direct(self, connection: Connection, wire: GatewayWebSocketProtocol) -> None:
        """Requests arrive through `Requests.on_frame`, called by the protocol as frames are
        parsed; this task only waits for the disconnect, then for handlers still running."""
        current_answerer.set(answerer_of(connection))
        current_origin.set(connection.id)
        requests = Requests(self, connection, wire, contextvars.copy_context())
        connection.wire = wire
        try:
            for frame in wire.attach(requests.on_frame):
                requests.on_frame(frame)
            while await self._receive(connection) is not None:
                pass  # only a disconnect (or a frame queued before `attach`) comes this way
        finally:
            wire.frame_sink = _ignore
            await requests.finish()

    async def _read_queued(self, connection: Connection) -> None:
        tasks: set[asyncio.Task[None]] = set()
        in_flight = asyncio.Semaphore(self.state.settings.limits.max_in_flight)
        try:
            while True:
                frame = await self._receive(connection)
                if frame is None:
                    return
                if isinstance(frame, bytes):
                    connection.send(
                        Error(
                            code=ErrorCode.INVALID_MESSAGE,
                            message="binary frames are not accepted: send JSON as text frames",
                        )
                    )
                    continue
                try:
                    message = parse_client(frame)
                except ValidationError as exc:
                    connection.send(invalid_message(frame, exc))
                    continue
                except Exception:  # never let one odd frame end the connection silently
                    log.warning("unreadable frame (%d characters)", len(frame))
                    connection.send(
                        Error(
                            id=request_id_of(frame),
                            code=ErrorCode.INVALID_MESSAGE,
                            message="the frame could not be read as a message",
                        )
                    )
                    continue
                if isinstance(message, Hello):
                    connection.send(
                        Error(
                            id=message.id,
                            code=ErrorCode.INVALID_MESSAGE,
                            message="already authenticated: send hello only once",
                        )
                    )
                    continue
                # At most `max_in_flight` requests run at once per connection; past that the
                # reader waits, the socket stops being read, and TCP pushes back on the client.
                await in_flight.acquire()
                task = asyncio.create_task(self._handle(connection, message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(lambda _t: in_flight.release())
        finally:
            # Handlers may commit work (a trigger, an approval); let them finish briefly
            # so a disconnect never leaves a request half done.
            if tasks:
                await asyncio.wait(tasks, timeout=5)

    def reject(self, connection: Connection, frame: str | bytes) -> ClientMessage | None:
        """The request in `frame`, or None after answering why there is none."""
        if isinstance(frame, bytes):
            connection.send(
                Error(
                    code=ErrorCode.INVALID_MESSAGE,
                    message="binary frames are not accepted: send JSON as text frames",
                )
            )
            return None
        try:
            message = parse_client(frame)
        except ValidationError as exc:
            connection.send(invalid_message(frame, exc))
            return None
        except Exception:  # never let one odd frame end the connection silently
            log.warning("unreadable frame (%d characters)", len(frame))
            connection.send(
                Error(
                    id=request_id_of(frame),
                    code=ErrorCode.INVALID_MESSAGE,
                    message="the frame could not be read as a message",
                )
            )
            return None
        if isinstance(message, Hello):
            connection.send(
                Error(
                    id=message.id,
                    code=ErrorCode.INVALID_MESSAGE,
                    message="already authenticated: send hello only once",
                )
            )
            return None
        return message

    def handle_now(self, ctx: HandlerContext, message: ClientMessage) -> None:
        """Answer a request that cannot block, inline (see `Router.dispatch_now`)."""
        started = time.perf_counter()
        reply = self.router.dispatch_now(message, ctx)
        own_ids(ctx.connection, reply)
        ctx.connection.send(reply)
        self.state.metrics.request_seconds.observe(message.type, time.perf_counter() - started)

    async def handle_later(self, ctx: HandlerContext, message: ClientMessage) -> None:
        """Answer a request whose handler awaits; runs in its own task (the connection's
        context vars: answerer, origin, log connection id)."""
        started = time.perf_counter()
        reply = await self.router.dispatch(message, ctx)
        own_ids(ctx.connection, reply)
        ctx.connection.send(reply)
        self.state.metrics.request_seconds.observe(message.type, time.perf_counter() - started)

    async def _handle(self, connection: Connection, message: ClientMessage) -> None:
        # Whatever this request answers (an approval) is recorded as answered by this peer,
        # and the events it causes (even before the reply names their ids) are its own.
        current_answerer.set(answerer_of(connection))
        current_origin.set(connection.id)
        started = time.perf_counter()
        reply = await self.router.dispatch(message, HandlerContext(connection, self.state))
        own_ids(connection, reply)
        connection.send(reply)
        self.state.metrics.request_seconds.observe(message.type, time.perf_counter() - started)

    async def _refuse(
        self, connection: Connection, code: ErrorCode, text: str, close: int, **extra: Any
    ) -> None:
        error = Error(id=extra.pop("msg_id", None), code=code, message=text, details=extra or None)
        connection.close_code = close
        ws = connection.websocket
        if ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await ws.send_text(encode(error))
        connection.abort(close)

    async def _rate_limited(self, connection: Connection, msg_id: str | None) -> bool:
        """Count a failed hello; True (and refused) when its bucket is already blocked.

        Only failures are ever refused for being rate limited: the right token is checked
        before this is called, so the owner is never locked out by someone else's bad hellos.
        """
        limiter = self.state.limiter
        retry = limiter.retry_after(connection.remote)
        if retry <= 0:
            limiter.record_failure(connection.remote)
            return False
        await self._refuse(
            connection,
            ErrorCode.RATE_LIMITED,
            f"too many failed handshakes from {connection.remote}; retry in {retry:.0f} s",
            CloseCode.RATE_LIMITED,
            msg_id=msg_id,
            retryAfterS=round(retry),
        )
        return True

    async def _handshake(self, connection: Connection) -> bool:
        limits = self.state.settings.limits
        try:
            async with asyncio.timeout(limits.hello_timeout_s):
                frame = await self._receive(connection)
        except TimeoutError:
            log.info("no hello within %.0f s", limits.hello_timeout_s)
            connection.abort(CloseCode.HELLO_TIMEOUT)
            return False
        if frame is None:
            return False
        text = frame if isinstance(frame, str) else ""
        try:
            hello = parse_client(text)
            if not isinstance(hello, Hello):
                raise TypeError(hello.type)
        except (ValidationError, TypeError):
            if await self._rate_limited(connection, request_id_of(text)):
                return False
            await self._refuse(
                connection,
                ErrorCode.UNAUTHENTICATED,
                'the first frame must be {"type":"hello","id":…,"protocol":1,"token":…}',
                CloseCode.UNAUTHORIZED,
                msg_id=request_id_of(text),
            )
            return False
        except Exception:  # a frame the parser chokes on must still be answered
            log.warning("unreadable first frame from %s", connection.remote)
            if await self._rate_limited(connection, None):
                return False
            await self._refuse(
                connection,
                ErrorCode.UNAUTHENTICATED,
                "the first frame could not be read: it must be a hello",
                CloseCode.UNAUTHORIZED,
            )
            return False
        if not self.state.tokens.matches(hello.token):
            if await self._rate_limited(connection, hello.id):
                return False
            log.warning("wrong token from %s", connection.remote)
            await self._refuse(
                connection,
                ErrorCode.UNAUTHORIZED,
                "wrong token: use the one in gateway.token (`hearth token show`)",
                CloseCode.UNAUTHORIZED,
                msg_id=hello.id,
            )
            return False
        if hello.protocol != PROTOCOL_VERSION:
            await self._refuse(
                connection,
                ErrorCode.UNSUPPORTED_PROTOCOL,
                f"this gateway speaks protocol {PROTOCOL_VERSION}, not {hello.protocol}",
                CloseCode.UNSUPPORTED_PROTOCOL,
                msg_id=hello.id,
                supported=[PROTOCOL_VERSION],
            )
            return False
        connection.client = hello.client
        self.state.connections.add(connection)
        connection.send(
            HelloOk(
                id=hello.id,
                protocol=PROTOCOL_VERSION,
                server=ServerInfo(name=self.server_name, version=self.state.version),
                connection_id=connection.id,
                features=self.features,
            )
        )
        client = f"{hello.client.name} {hello.client.version}".strip() if hello.client else "?"
        log.info("authenticated %s from %s", client, connection.remote)
        return True
