"""A stdio server's stderr, line by line, into the gateway's log (with its secrets removed).

The SDK hands the child process a file for its stderr; this gives it the write end of a pipe
and reads the other end on the event loop. Each line is logged under `hearth.mcp.NAME` with
the values of the server's own `secret:` settings replaced (the log's filter also removes
every stored key), so a server that prints its token does not put it in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
from types import TracebackType
from typing import TextIO

REDACTED = "[redacted]"
#: A line longer than this is cut in the log; a server dumping megabytes must not flood it.
MAX_LINE = 4000


class StderrToLog:
    def __init__(self, server: str, secrets: list[str]) -> None:
        self.log = logging.getLogger(f"hearth.mcp.{server}")
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        self.file: TextIO | None = None
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.ReadTransport | None = None

    def _clean(self, line: str) -> str:
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        return line[:MAX_LINE]

    async def __aenter__(self) -> StderrToLog:
        read_fd, write_fd = os.pipe()
        self.file = os.fdopen(write_fd, "w")
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb")
        )
        self._task = asyncio.create_task(self._pump(reader), name=f"{self.log.name}-stderr")
        return self

    def spawned(self) -> None:
        """Close our copy of the write end once the child has its own, so EOF can arrive."""
        if self.file is not None:
            self.file.close()
            self.file = None

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # a line over the reader's limit: skip its rest
                continue
            if not raw:
                return
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                self.log.info("stderr: %s", self._clean(text))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.spawned()
        try:
            if self._task is not None:
                # The child is gone by now; what it wrote last is still worth reading.
                await asyncio.wait({self._task}, timeout=1.0)
        finally:
            if self._task is not None:
                self._task.cancel()
            if self._transport is not None:
                self._transport.close()
