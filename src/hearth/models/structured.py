"""One model call with optional structured output that does not depend on one mechanism.

Local servers differ: llama.cpp and Ollama may reject a forced tool choice or a JSON-schema
response format, with a 4xx or (llama-cpp-python) an HTTP 500. With `structured_output =
"auto"` we try the tool form first and, when the server rejects it (HTTP 4xx other than an auth
error, any 5xx) or answers with something unusable, ask again with the schema in the prompt
(prompted JSON). Once prompted JSON worked for a model, later calls start with it (per process).

Errors reach callers as `ModelCallError`, whose text is one readable line; details are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hearth.models.errors import ModelCallError, describe
from hearth.models.factory import ResolvedModel

if TYPE_CHECKING:
    from pydantic_ai import Agent, Tool
    from pydantic_ai.usage import RunUsage

log = logging.getLogger("hearth.models")

#: Statuses that say "who you are", not "what you asked": another form will not help.
_NOT_ABOUT_THE_FORM = (401, 403, 404, 408, 429)


class _TryPrompted(Exception):
    """The structured form failed in a way prompted JSON may avoid."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _output_type(schema: dict[str, Any], mode: str) -> Any:
    from pydantic_ai import NativeOutput, PromptedOutput, StructuredDict, ToolOutput

    structured = StructuredDict(schema, name=str(schema.get("title") or "result"))
    if mode == "native":
        return NativeOutput(structured)
    if mode == "prompted":
        return PromptedOutput(structured)
    return ToolOutput(structured)


async def run_model(
    resolved: ResolvedModel,
    prompt: str,
    *,
    output_schema: dict[str, Any] | None = None,
    instructions: str | None = None,
    tools: Sequence[Tool[None]] = (),
    usage: RunUsage | None = None,
) -> Any:
    """The model's answer: text, or a dict matching `output_schema`.

    `tools` are offered to the model on every attempt (the heartbeat's read-only tools);
    `usage`, when given, is increased by what the successful attempt used.
    """
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import UserError

    if output_schema is None:
        agent: Agent[None, Any] = Agent(resolved.model, instructions=instructions, tools=tools)
        return await _run(agent, prompt, resolved, usage=usage)
    mode = resolved.structured_output
    first = (resolved.capabilities.structured or "tool") if mode == "auto" else mode
    try:
        agent = Agent(
            resolved.model,
            output_type=_output_type(output_schema, first),
            instructions=instructions,
            tools=tools,
        )
    except UserError as exc:
        raise ModelCallError(f"output_schema cannot be used: {exc}") from None
    try:
        return await _run(
            agent,
            prompt,
            resolved,
            may_fall_back=mode == "auto" and first != "prompted",
            usage=usage,
        )
    except _TryPrompted as failed:
        log.warning(
            "%s: %s structured output failed (%s); asking again with the schema in the prompt",
            resolved.name,
            first,
            failed.reason,
        )
    agent = Agent(
        resolved.model,
        output_type=_output_type(output_schema, "prompted"),
        instructions=instructions,
        tools=tools,
    )
    output = await _run(agent, prompt, resolved, usage=usage)
    if resolved.capabilities.structured != "prompted":
        resolved.capabilities.structured = "prompted"
        log.warning(
            "%s: prompted JSON works; later structured calls use it until the gateway restarts",
            resolved.name,
        )
    return output


def _worth_prompting(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status >= 400 and status not in _NOT_ABOUT_THE_FORM
    return type(exc).__name__ in ("UnexpectedModelBehavior", "ModelServerError")


async def _run(
    agent: Agent[None, Any],
    prompt: str,
    resolved: ResolvedModel,
    *,
    may_fall_back: bool = False,
    usage: RunUsage | None = None,
) -> Any:
    from pydantic_ai.exceptions import AgentRunError

    try:
        result = await agent.run(prompt, model_settings={"timeout": resolved.timeout_s})
    except (AgentRunError, OSError, TimeoutError) as exc:
        reason = describe(exc, resolved.name)
        if may_fall_back and _worth_prompting(exc):
            raise _TryPrompted(reason) from exc
        log.warning("model call failed: %s", reason)
        log.debug("model call to %s failed", resolved.name, exc_info=exc)
        raise ModelCallError(reason) from None
    except Exception as exc:
        # Provider SDKs raise their own errors too; keep the callers' contract simple.
        log.exception("model call to %s failed unexpectedly", resolved.name)
        raise ModelCallError(describe(exc, resolved.name)) from None
    if usage is not None:
        usage.incr(result.usage)
    return result.output
