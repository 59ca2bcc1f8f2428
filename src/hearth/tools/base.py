"""What every tool is: a named, described, risk-rated async function over a pydantic model.

Workflows, chat and the heartbeat all call tools through the same `ToolRegistry`, so the
metadata here (risk, read-only, always-gated) is what each of them uses to decide whether a
call may run on its own or must wait for a person's approval. The argument model doubles as
the JSON Schema a language model sees, which is why its fields carry descriptions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hearth.events import EventBus


class Risk(StrEnum):
    """How much harm a mistaken call could do; callers map this to approval policy."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class ToolContext:
    """Everything a tool may touch besides its arguments, so tools hold no global state.

    `idempotency_key` (execution, step, visit and attempt) is the same when a step the
    gateway stopped in runs again, and new for every retry, so a tool that talks to the outside
    world can let the other side recognise a repeat; `source` says who called, so a person
    reading a notification knows where it came from.
    `execution_id` and `step_id` say which workflow step called, so a stored notification can
    be shown with its execution.
    """

    workspace: Path
    bus: EventBus
    idempotency_key: str | None = None
    source: str | None = None
    execution_id: str | None = None
    step_id: str | None = None


class ToolError(Exception):
    """A tool call failed; the message is written for the person, not for a traceback."""


class ToolNotFoundError(ToolError):
    """No tool has that name; the message lists the names that do exist."""


class ToolArgumentsError(ToolError):
    """The arguments did not fit the tool's model; nothing was run.

    `errors` keeps one `{"path", "message"}` entry per problem so a client can point at the
    offending field instead of parsing the message.
    """

    def __init__(self, tool_name: str, errors: list[dict[str, str]]) -> None:
        self.tool_name = tool_name
        self.errors = errors
        details = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        super().__init__(f"{tool_name}: {details}")


class Tool(ABC):
    """One capability. Subclasses set the class variables and implement `run`.

    `run` receives an already validated instance of `args_model` (the registry validates
    first), and returns JSON-serialisable data because results are stored and sent to clients.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[BaseModel]]
    risk: ClassVar[Risk]
    read_only: ClassVar[bool]
    #: True when a person must approve every single call, whatever the caller's policy says.
    always_gated: ClassVar[bool] = False

    def idempotent(self, args: Any) -> bool:
        """Whether running this call twice has the same effect as running it once.

        A durable workflow uses it after a crash: a step the gateway stopped in may or may not
        have had its effect, and only an idempotent call may simply run again; any other asks
        a person. `args` is the validated argument model. False unless a tool says otherwise,
        because guessing wrong repeats a side effect.
        """
        return False

    def parse_args(self, raw: dict[str, Any]) -> Any:
        """The validated arguments; raises `ValidationError` or `ToolArgumentsError`.

        Built-in tools validate with their pydantic model; a tool described only by a JSON
        Schema (an MCP tool) overrides this.
        """
        return self.args_model.model_validate(raw)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The argument schema as a language model (or a form in a client) should see it."""
        return cls.args_model.model_json_schema()

    @abstractmethod
    async def run(self, args: Any, ctx: ToolContext) -> Any:
        """Do the work; raise `ToolError` with a readable message when it cannot be done."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} risk={self.risk} read_only={self.read_only}>"


class ToolArgs(BaseModel):
    """Base for argument models.

    Unknown fields are refused (a typo is reported, not ignored). Numbers are accepted where
    text is expected because workflow templates render `"{{ input.count }}"` to its native
    value: writing a number into a file should just work.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
