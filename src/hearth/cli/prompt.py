"""Asking a person a question without stopping the event loop.

`typer.confirm` (or `input()`) inside async code blocks the loop: the WebSocket cannot answer
the gateway's pings, so the connection dies after a while, and events (another client answering
the same question) are not seen until the person types. `StdinLines` reads standard input on a
daemon thread with `os.read` (no buffered-reader lock that could hang interpreter shutdown) and
hands complete lines to the loop, so a prompt is just an `await` that can be cancelled when the
question is answered elsewhere.

Works the same on a terminal and on a pipe (scripts, tests); at end of input `readline` returns
None and callers fall back to waiting for an answer from another client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading

from rich.console import Console

CHUNK = 4096


class StdinLines:
    """Lines of standard input, delivered to one event loop. Start it inside that loop."""

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._eof = False

    @property
    def at_eof(self) -> bool:
        """True once the end of input was reached and every line before it was taken."""
        return self._eof and self._queue.empty()

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="hearth-stdin", daemon=True)
        self._thread.start()

    def _put(self, item: str | None) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is asking any more
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._fd, CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                if pending:
                    self._put(pending.decode(errors="replace"))
                self._put(None)
                return
            pending += chunk
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                self._put(line.decode(errors="replace").rstrip("\r"))

    def discard_typeahead(self) -> None:
        """Drop lines typed before the question was shown (say, a late answer to an earlier
        prompt that vanished), so they cannot answer this one."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._eof = True
                self._queue.put_nowait(None)
                return

    async def readline(self) -> str | None:
        """The next line without its newline, or None at the end of input."""
        self._start()
        if self._eof:
            return None
        item = await self._queue.get()
        if item is None:
            self._eof = True
            self._queue.put_nowait(None)
        return item


def show_question(console: Console, text: str) -> None:
    """Print a question and leave the cursor after it (no markup: it may hold brackets)."""
    console.print(text, end="", markup=False, highlight=False)
    console.file.flush()


def take_back_question(console: Console) -> None:
    """End a question nobody answered here: erase it on a terminal, end its line elsewhere."""
    if console.is_terminal and sys.stdout.isatty():
        console.file.write("\r\x1b[2K")
        console.file.flush()
    else:
        console.print()
