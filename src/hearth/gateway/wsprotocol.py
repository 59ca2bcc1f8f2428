"""uvicorn's sans-I/O WebSocket protocol, with a close that cannot hang on a peer not reading.

A client that stops reading fills the kernel buffer and then asyncio's write buffer; uvicorn
then pauses our sends. A close frame queued behind megabytes the peer will never read never
reaches the wire, and `transport.close()` waits for that buffer to drain, forever: the socket
stayed ESTABLISHED for minutes after the gateway had given up on the client. Here the close
frame is queued without waiting, and the close timer (`close_timeout`, 10 s) aborts the
transport instead of closing it when bytes are still stuck: a peer that resumes reading in
time gets everything and the 4008, one that does not gets a reset.

A text frame that is not UTF-8 is closed with 1007 as before, but logged in one line instead
of uvicorn's traceback (bad input from a peer is not a bug in the gateway).

The hot path (issue 19). uvicorn hands every received message to the app through an
`asyncio.Queue` and pauses reading the socket until the app has taken it: two `epoll_ctl` calls
and a task wake-up per frame, about 15 % of the gateway's CPU, and the reply then goes through
the app's writer task and Starlette's `send`. After the handshake the endpoint attaches a
`FrameSink` instead: complete messages are handed to it synchronously from `data_received`,
and it writes replies straight to the transport (`write_text`) when nothing is queued before
them. Reading is paused only on the endpoint's request, above a high-water mark of requests in
flight (`pause_inbound` / `resume_inbound`), never per frame. Writes are never blocked here:
when the transport's buffer is above its high-water mark (`writable` cleared by
`pause_writing`), the connection queues and its writer waits, and a peer that stops reading is
closed by the connection's stall and queue limits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.protocol import State

log = logging.getLogger("hearth.gateway.ws")

#: Receives each complete message (text as str, binary as bytes), synchronously.
FrameSink = Callable[[str | bytes], None]
#: The scope key under which the endpoint finds this protocol object.
SCOPE_KEY = "hearth.wire"


def wire_of(scope: Any) -> GatewayWebSocketProtocol | None:
    """The protocol serving a WebSocket scope, when it is ours (not under another server)."""
    found = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
    return found if isinstance(found, GatewayWebSocketProtocol) else None


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    frame_sink: FrameSink | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope[SCOPE_KEY] = self

    # -- the direct path --------------------------------------------------------------------

    def attach(self, sink: FrameSink) -> list[str | bytes]:
        """Deliver later messages to `sink`; returns those already queued for the app, in
        order, which the caller handles first. Disconnects still go through `receive`."""
        self.frame_sink = sink
        waiting: list[str | bytes] = []
        kept = []
        while not self.queue.empty():
            message = self.queue.get_nowait()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                waiting.append(text if text is not None else bytes(message.get("bytes") or b""))
            else:
                kept.append(message)
        for message in kept:
            self.queue.put_nowait(message)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        return waiting

    def pause_inbound(self) -> None:
        """Stop reading the socket (TCP then pushes back on the peer) until `resume_inbound`."""
        if not self.read_paused and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def resume_inbound(self) -> None:
        if self.read_paused and not self.close_sent:
            self.read_paused = False
            self.transport.resume_reading()

    @property
    def can_write(self) -> bool:
        """True when a frame written now goes out without waiting (and the socket is open)."""
        return (
            self.writable.is_set()
            and self.handshake_complete
            and not self.close_sent
            and not self.disconnected
            and self.initial_response is None
            and self.conn.state is State.OPEN  # not after the peer's close frame was parsed
            and not self.transport.is_closing()
        )

    def write_texts(self, texts: list[str]) -> None:
        """Frame and write text messages in one `transport.write` (check `can_write` first)."""
        conn = self.conn
        for text in texts:
            conn.send_text(text.encode())
        self.transport.write(b"".join(conn.data_to_send()))

    def handle_text(self, event: Frame) -> None:
        if self.frame_sink is None or not event.fin:
            super().handle_text(event)
            return
        # One complete text frame, the common case: no list, no join.
        if self.close_sent:
            return
        try:
            text = str(event.data, "utf-8")
        except UnicodeDecodeError as exc:
            log.info("closing 1007: a text frame was not UTF-8 (byte %d)", exc.start)
            self.conn.send_close(1007)
            self.handle_parser_exception()
            return
        self.frame_sink(text)

    async def send(self, message: ASGISendEvent) -> None:
        stuck = (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and not self.close_sent
            and not self.writable.is_set()
            and self.transport is not None
            and not self.transport.is_closing()
        )
        if stuck:
            # Queue the close frame behind what is buffered (writing never blocks), and give
            # the peer `close_timeout` to read up to it; if the bytes are still stuck then,
            # abort: the peer sees a reset instead of a socket that never delivers.
            code = int(message.get("code", 1000))  # type: ignore[call-overload]
            reason = str(message.get("reason", "") or "")
            log.info(
                "close %d queued behind %d unread bytes; aborting unless read within %.0f s",
                code,
                self.transport.get_write_buffer_size(),
                self.close_timeout,
            )
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_or_abort)
            return
        await super().send(message)
        if message["type"] == "websocket.close" and self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_or_abort)

    def send_receive_event_to_app(self) -> None:
        text: str | None = None
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = b"".join(self.frames)
            try:
                text = data.decode()
            except UnicodeDecodeError as exc:
                self.frames = []
                log.info("closing 1007: a text frame was not UTF-8 (byte %d)", exc.start)
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        sink = self.frame_sink
        if sink is None:
            super().send_receive_event_to_app()
            return
        frames, self.frames = self.frames, []
        if self.close_sent:
            return
        sink(text if text is not None else b"".join(frames))

    def _close_or_abort(self) -> None:
        """After the close timeout: bytes still buffered means the peer stopped reading."""
        if self.transport.get_write_buffer_size() > 0:
            self.transport.abort()
        else:
            self.transport.close()
