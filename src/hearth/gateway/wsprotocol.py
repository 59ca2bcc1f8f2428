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
"""

from __future__ import annotations

import logging

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger("hearth.gateway.ws")


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
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
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError as exc:
                self.frames = []
                log.info("closing 1007: a text frame was not UTF-8 (byte %d)", exc.start)
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()

    def _close_or_abort(self) -> None:
        """After the close timeout: bytes still buffered means the peer stopped reading."""
        if self.transport.get_write_buffer_size() > 0:
            self.transport.abort()
        else:
            self.transport.close()
