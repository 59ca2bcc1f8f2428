"""The workflows a person has on disk, reloaded on request and when files change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from watchfiles import awatch

from hearth.workflows.loader import LoadedWorkflow, load_workflow_dirs

log = logging.getLogger("hearth.workflows.catalog")


class WorkflowCatalog:
    def __init__(self, directories: Sequence[Path], tools: Collection[str] = ()) -> None:
        self.directories = list(directories)
        self.tools = set(tools)
        self._workflows: dict[str, LoadedWorkflow] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def reload(self) -> list[LoadedWorkflow]:
        """Re-read every directory; a bad file is listed as invalid, never hides the others."""
        self._workflows = {
            key: check_tools(item, self.tools) if self.tools else item
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


def check_tools(item: LoadedWorkflow, tools: Collection[str]) -> LoadedWorkflow:
    """Mark a workflow invalid when a step names a tool this gateway does not have.

    Found at load time rather than when the step runs, so `workflow.list` and
    `hearth workflow validate` tell the person before anything starts.
    """
    if item.definition is None:
        return item
    problems = []
    for index, step in enumerate(item.definition.steps):
        if step.action == "tool" and step.tool not in tools:
            hint = (
                " (enable it with [tools.shell] enabled = true)" if step.tool == "shell.run" else ""
            )
            problems.append(
                f"{item.path}: steps[{index}].tool: unknown tool {step.tool!r}{hint}; known: "
                f"{', '.join(sorted(tools))}"
            )
    if not problems:
        return item
    return replace(item, definition=None, error="\n".join(problems))
