"""What a step does once the runner decided to run it: its action, and where it goes next.

The dispatch over actions (`noop`, `tool`, `model`) and routing (branches, `on_success`) are
kept apart from the runner's bookkeeping, so a new action touches this module only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.events import EventBus
from hearth.models import ModelFactory, ModelNotConfiguredError, run_model
from hearth.store.records import ExecutionRecord
from hearth.tools import ToolContext, ToolRegistry
from hearth.workflows.definition import StepDef, WorkflowDef
from hearth.workflows.errors import StepFailedError
from hearth.workflows.expressions import Expressions
from hearth.workflows.output_schema import check_output
from hearth.workflows.states import END


class Actions:
    def __init__(
        self,
        *,
        bus: EventBus,
        tools: ToolRegistry,
        models: ModelFactory,
        workspace: Path,
        expressions: Expressions,
    ) -> None:
        self.bus = bus
        self.tools = tools
        self.models = models
        self.workspace = workspace
        self.expressions = expressions

    def on_interrupt(self, step: StepDef, args: Any) -> str:
        """`retry`, `ask` or `fail` for a tool step the gateway stopped in (see docs)."""
        if step.on_interrupt != "ask":
            return step.on_interrupt
        assert step.tool is not None
        return "retry" if self.tools.idempotent(step.tool, args) else "ask"

    async def route(
        self,
        definition: WorkflowDef,
        step: StepDef,
        context: Callable[[], dict[str, Any]],
    ) -> str | None:
        if step.branches:
            names = context()
            for branch in step.branches:
                if await self.expressions.aevaluate(branch.condition, names):
                    return None if branch.goto == END else branch.goto
        if step.on_success:
            return None if step.on_success == END else step.on_success
        return definition.next_step_id(step.id)

    async def act(
        self, record: ExecutionRecord, step: StepDef, seq: int, args: Any, prompt: Any
    ) -> Any:
        if step.action == "noop":
            return None
        if step.action == "tool":
            assert step.tool is not None
            context = ToolContext(
                workspace=self.workspace,
                bus=self.bus,
                # The same when an interrupted step runs again, new for every retry and visit.
                idempotency_key=f"{record.id}:{step.id}:{record.visit_seq}:{record.attempt}",
                source=f"workflow:{record.workflow_id}",
                execution_id=record.id,
                step_id=step.id,
            )
            return await self.tools.call(step.tool, args, context)
        if step.action == "model":
            try:
                resolved = self.models.resolve()
            except ModelNotConfiguredError as exc:
                raise StepFailedError(str(exc), code="MODEL_NOT_CONFIGURED") from None
            answer = await run_model(resolved, str(prompt), output_schema=step.output_schema)
            check_output(step.output_schema, answer)
            return answer
        raise StepFailedError(f"unknown action {step.action!r}")
