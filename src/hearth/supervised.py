"""One supervised shape for every background loop the gateway runs.

Why one helper: the hand-rolled `while True: try/except/sleep` loops each decided alone what a
failure means. One forgot the `try` (a single database hiccup ended it for the life of the
process), another logged every failure with a traceback every few milliseconds. A loop here:

- survives any exception from its body, logs the first failure of a streak with its traceback
  and the rest as one line each, and backs off exponentially (capped) until the body succeeds;
- lets the body say when it wants to run next (a scheduler knows its next due time), and can be
  woken early (`wake()`), e.g. when a new schedule is added;
- records when its body last succeeded, which readiness checks read;
- stops cleanly: `stop()` cancels the sleep or the body and waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

Body = Callable[[], Awaitable[float | None]]

_log = logging.getLogger("hearth.supervised")


class SupervisedLoop:
    """Runs `body` forever: after a success it sleeps what the body returned (or `interval_s`)."""

    def __init__(
        self,
        name: str,
        body: Body,
        *,
        interval_s: float,
        initial_delay_s: float = 0.0,
        backoff_max_s: float = 60.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self._body = body
        self._interval_s = interval_s
        self._initial_delay_s = initial_delay_s
        self._backoff_max_s = max(backoff_max_s, interval_s)
        self._log = log or _log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        """Consecutive failures of the body; 0 after a success."""
        self.last_ok: float | None = None
        """`time.monotonic()` of the body's last success, None before the first."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run the body now instead of at the end of the current sleep."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        if self._initial_delay_s > 0:
            await self._sleep(self._initial_delay_s)
        while True:
            delay = await self.run_once()
            await self._sleep(delay)

    async def run_once(self) -> float:
        """One pass of the body with the loop's error handling; returns the delay before the next.

        Public so that a caller can run a first pass itself (at start-up, before serving) with
        the same logging and backoff as every later one.
        """
        try:
            wanted = await self._body()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                self._log.exception("%s failed; retrying with backoff", self.name)
            else:
                self._log.warning(
                    "%s failed again (%d in a row): %s", self.name, self.failures, exc
                )
            return min(self._backoff_max_s, self._interval_s * 2.0 ** min(self.failures, 16))
        if self.failures:
            self._log.info("%s recovered after %d failures", self.name, self.failures)
        self.failures = 0
        self.last_ok = time.monotonic()
        return self._interval_s if wanted is None else max(0.0, wanted)

    async def _sleep(self, delay: float) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=delay)
        except TimeoutError:
            return
        self._wake.clear()


__all__ = ["Body", "SupervisedLoop"]
