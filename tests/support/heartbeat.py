"""Helpers for heartbeat tests: checklist files and models that answer like a heartbeat model.

Two kinds of model answer the heartbeat's one structured call:

- `CountingModel`, a pydantic-ai `FunctionModel` that counts its calls and keeps every prompt,
  for tests that drive the runner directly;
- `fake_answer(...)`, a reply spec for the fake OpenAI server (tests/support/fake_openai.py),
  for tests that go through a real gateway and the real provider code.

Both read the open items back out of the prompt (the numbered "Open items:" list) and let the
test decide, per item, whether it needs action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from hearth.models import ResolvedModel
from tests.support.fake_openai import FakeOpenAI, JsonContent, ToolCall, last_user_text, tool_names

_ITEM_LINE = re.compile(r"^\d+\. (.*)$")

#: Decides the answer for one item: None = all fine, a string = needs action (the details).
Decide = Callable[[str], "str | None"]


def write_checklist(
    path: Path,
    items: Iterable[str] = (),
    *,
    done: Iterable[str] = (),
    front: str | None = None,
    context: str = "",
) -> Path:
    parts = []
    if front is not None:
        parts.append(f"---\n{front.strip()}\n---")
    if context:
        parts.append(context)
    parts.append("\n".join([*(f"- [ ] {i}" for i in items), *(f"- [x] {d}" for d in done)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def items_in(prompt: str) -> list[str]:
    """The open items of a heartbeat prompt, in order."""
    _, _, listed = prompt.partition("Open items:\n")
    found = []
    for line in listed.splitlines():
        match = _ITEM_LINE.match(line)
        if match:
            found.append(match.group(1))
    return found


def report(items: list[str], decide: Decide) -> dict[str, Any]:
    checks = []
    for item in items:
        details = decide(item)
        entry: dict[str, Any] = {"description": item, "actionNeeded": details is not None}
        if details is not None:
            entry["details"] = details
        checks.append(entry)
    return {"checks": checks}


def all_fine(item: str) -> str | None:
    return None


class CountingModel:
    """A FunctionModel that answers every open item via `decide` and counts its calls.

    `answer` may be replaced to return something else (a raw dict, or raise) for error tests.
    """

    def __init__(self, decide: Decide = all_fine) -> None:
        self.decide = decide
        self.prompts: list[str] = []
        self.answer: Callable[[list[str]], Awaitable[Any]] | None = None
        self.model = FunctionModel(self._respond, model_name="counting")

    @property
    def calls(self) -> int:
        return len(self.prompts)

    def resolve(self, name: str | None = None) -> ResolvedModel:
        return ResolvedModel("test:counting", self.model, "auto")

    async def _respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = _user_prompt(messages)
        self.prompts.append(prompt)
        items = items_in(prompt)
        output = await self.answer(items) if self.answer else report(items, self.decide)
        if info.output_tools:
            return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, output)])
        return ModelResponse(parts=[TextPart(json.dumps(output))])


def _user_prompt(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def fake_answer(decide: Decide = all_fine) -> Callable[[dict[str, Any]], Any]:
    """A fake OpenAI reply spec: the output tool when offered, else prompted JSON."""

    def reply(body: dict[str, Any]) -> Any:
        answer = report(items_in(last_user_text(body)), decide)
        if "final_result" in tool_names(body):
            return ToolCall("final_result", answer)
        return JsonContent(answer)

    return reply


def model_settings(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"local": {"kind": "openai", "base_url": fake.base_url}},
        "models": {"default": "local:fake-model"},
        **extra,
    }


def model_config_toml(fake: FakeOpenAI, extra: str = "") -> str:
    return (
        '[models]\ndefault = "local:fake-model"\n\n'
        f'[providers.local]\nkind = "openai"\nbase_url = "{fake.base_url}"\n{extra}'
    )
