"""The runner tasks this node drives, one per execution, and what they share.

Kept in one place so that the request API (which starts executions), the recovery pass (which
resumes them) and the runner itself (which ends them) agree on which execution has a runner,
and so that stopping the gateway stops every one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hearth.store.records import ExecutionRecord, StepRunRecord
from hearth.workflows.definition import WorkflowDef


class Runners:
    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}
        #: Committed executions waiting for their tick (`launch_at`).
        self.scheduled: dict[str, asyncio.TimerHandle] = {}
        self.cancel_wanted: set[str] = set()
        #: Executions resumed (an approval, a due timer) while their previous runner was still
        #: wrapping up after the pause: started again as soon as that runner is gone.
        self.respawn: set[str] = set()
        self.definitions: dict[tuple[str, str], WorkflowDef] = {}
        #: What a runner knows after its own last commit, so a step needs no read-back.
        self.state: dict[str, tuple[ExecutionRecord, list[StepRunRecord]]] = {}
        #: Short tasks (timer resumes) that must not outlive `stop`.
        self.background: list[asyncio.Task[None]] = []
        self.stopping = False
        self._drive: Callable[[str], Awaitable[None]] | None = None

    def bind(self, drive: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        """The coroutine that drives one execution (the runner's); set once when wiring."""
        self._drive = drive

    def spawn(self, execution_id: str) -> None:
        """Start the runner of an execution this node owns; one runner per execution.

        A runner that just paused the execution may still be registered (it publishes the
        pause before it returns) when an approval or a due timer resumes it: the new runner
        then starts the moment the old one is gone, not at the next recovery pass.
        """
        if self.stopping:
            return
        if execution_id in self.tasks:
            self.respawn.add(execution_id)
            return
        drive = self._drive
        assert drive is not None, "Runners.bind was not called"
        coroutine = drive(execution_id)
        assert asyncio.iscoroutine(coroutine)
        task = asyncio.create_task(coroutine, name=f"workflow-{execution_id}")
        self.tasks[execution_id] = task

    def in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.background.append(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        if task in self.background:
            self.background.remove(task)

    async def stop(self) -> None:
        """Stop runners without finishing their executions: they resume on the next start."""
        self.stopping = True
        for handle in set(self.scheduled.values()):
            handle.cancel()  # committed as running: the next start resumes them
        self.scheduled.clear()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        runners = list(self.tasks.values())
        for task in runners:
            task.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
