"""Running the ASGI app under uvicorn on a socket we bind ourselves.

Binding first lets us report "port in use" in one clear line (and support port 0 for tests)
before anything else starts. uvicorn re-raises SIGINT/SIGTERM after a graceful stop, which would
end the process with a signal status; the gateway instead treats them as a request to stop and
exits 0, as a service manager expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import ipaddress
import signal
import socket
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from hearth.config import Settings


class PortInUseError(OSError):
    pass


class RemoteBindRefusedError(ValueError):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, allow_remote: bool) -> None:
    if not is_loopback(host) and not allow_remote:
        raise RemoteBindRefusedError(
            f"refusing to listen on {host}: it is reachable from other machines. "
            "Pass --allow-remote (and put TLS in front) if you mean it"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY on accepted connections only when the
    # listening socket says TCP. Without it small frames wait for the peer's delayed ACK
    # (about 40 ms on Linux), which is most of a chat reply's first-token latency.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                exc.errno,
                f"port {port} on {host} is already in use: stop what is using it "
                f"or choose another with --port",
            ) from None
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class GatewayServer(uvicorn.Server):
    """uvicorn.Server that stops on SIGINT/SIGTERM without re-raising the signal."""

    def __init__(
        self,
        config: uvicorn.Config,
        install_signals: bool,
        on_reload: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._install_signals = install_signals
        self._on_reload = on_reload

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if not self._install_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if self._on_reload is not None:
            # SIGHUP means "re-read your configuration" to daemons; it must not stop us.
            loop.add_signal_handler(signal.SIGHUP, self._on_reload)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if self._on_reload is not None:
                loop.remove_signal_handler(signal.SIGHUP)

    def _on_signal(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    limits = settings.limits
    return uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        ws="hearth.gateway.wsprotocol:GatewayWebSocketProtocol",  # websockets-sansio + abort
        ws_max_size=limits.max_frame_bytes,
        ws_ping_interval=limits.ws_ping_interval_s,
        ws_ping_timeout=limits.ws_ping_timeout_s,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )


async def serve_until_stopped(
    app: Any,
    settings: Settings,
    sock: socket.socket,
    *,
    install_signals: bool,
    on_started: Callable[[int], None],
    server_ready: Callable[[GatewayServer], None] | None = None,
    on_reload: Callable[[], None] | None = None,
) -> None:
    """Serve on `sock`; `on_started(port)` runs once the socket accepts connections.

    `on_reload` runs on SIGHUP (when signals are installed).
    """
    server = GatewayServer(uvicorn_config(app, settings), install_signals, on_reload)
    if server_ready is not None:
        server_ready(server)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.01)
    if server.started:
        # Everything loaded so far lives as long as the process: keep it out of the cyclic
        # collector, whose full passes otherwise stall every connection for 100+ ms.
        gc.collect()
        gc.freeze()
        on_started(sock.getsockname()[1])
    await task
