"""The workflows a person has on disk, reloaded on request and when files change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from watchfiles import awatch

from hearth.tools import ToolRegistry
from hearth.workflows.checks import check_workflow
from hearth.workflows.loader import LoadedWorkflow, load_workflow_dirs

log = logging.getLogger("hearth.workflows.catalog")


class WorkflowCatalog:
    """`tools` is the gateway's registry: a workflow calling a tool it lacks (or `shell.run`
    while disabled), or giving a tool literal arguments it refuses, is listed as invalid."""

    def __init__(self, directories: Sequence[Path], tools: ToolRegistry | None = None) -> None:
        self.directories = list(directories)
        self.tools = tools
        self._workflows: dict[str, LoadedWorkflow] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def reload(self) -> list[LoadedWorkflow]:
        """Re-read every directory; a bad file is listed as invalid, never hides the others."""
        self._workflows = {
            key: check_workflow(item, self.tools)
            for key, item in load_workflow_dirs(self.directories).items()
        }
        for item in self._workflows.values():
            if not item.valid:
                log.warning("workflow %s is invalid: %s", item.id, item.error)
        return self.all()

    def all(self) -> list[LoadedWorkflow]:
        return [self._workflows[key] for key in sorted(self._workflows)]

    def get(self, workflow_id: str) -> LoadedWorkflow | None:
        return self._workflows.get(workflow_id)

    def start_watching(self) -> None:
        existing = [d for d in self.directories if d.is_dir()]
        if existing:
            self._watcher = asyncio.create_task(self._watch(existing), name="workflow-watch")

    async def _watch(self, directories: list[Path]) -> None:
        try:
            async for _changes in awatch(*directories, stop_event=self._stop, debounce=200):
                self.reload()
                log.info("workflow files changed; reloaded %d", len(self._workflows))
        except Exception:
            log.exception("stopped watching workflow files; use workflow.reload")

    async def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
