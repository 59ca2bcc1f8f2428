"""One model call with optional structured output that does not depend on one mechanism.

Local servers differ: llama.cpp and Ollama may reject a forced tool choice or a JSON-schema
response format. With `structured_output = "auto"` we try the tool form first and, when the
server rejects it (HTTP 4xx), ask again with the schema in the prompt (prompted JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic_ai import Agent, NativeOutput, PromptedOutput, StructuredDict, Tool, ToolOutput
from pydantic_ai.exceptions import ModelHTTPError, UnexpectedModelBehavior, UserError
from pydantic_ai.usage import RunUsage

from hearth.models.factory import ResolvedModel

log = logging.getLogger("hearth.models")


class ModelCallError(Exception):
    """The model could not be reached, refused, or answered with something unusable."""


def _output_type(schema: dict[str, Any], mode: str) -> Any:
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
    if output_schema is None:
        agent: Agent[None, Any] = Agent(resolved.model, instructions=instructions, tools=tools)
        return await _run(agent, prompt, resolved.name, usage=usage, timeout_s=resolved.timeout_s)
    mode = resolved.structured_output
    first = "tool" if mode == "auto" else mode
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
            resolved.name,
            reraise_http=mode == "auto",
            usage=usage,
            timeout_s=resolved.timeout_s,
        )
    except ModelHTTPError as exc:
        log.info(
            "%s rejected %s structured output (HTTP %s); retrying with prompted JSON",
            resolved.name,
            first,
            exc.status_code,
        )
    agent = Agent(
        resolved.model,
        output_type=_output_type(output_schema, "prompted"),
        instructions=instructions,
        tools=tools,
    )
    return await _run(agent, prompt, resolved.name, usage=usage, timeout_s=resolved.timeout_s)


async def _run(
    agent: Agent[None, Any],
    prompt: str,
    name: str,
    *,
    reraise_http: bool = False,
    usage: RunUsage | None = None,
    timeout_s: float = 120.0,
) -> Any:
    try:
        result = await agent.run(prompt, model_settings={"timeout": timeout_s})
    except ModelHTTPError as exc:
        if reraise_http and 400 <= exc.status_code < 500 and exc.status_code not in (401, 403):
            raise
        raise ModelCallError(f"{name} answered HTTP {exc.status_code}: {exc.body}") from None
    except UnexpectedModelBehavior as exc:
        raise ModelCallError(f"{name} gave an unusable answer: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise ModelCallError(f"cannot reach {name}: {exc}") from None
    except Exception as exc:
        # Provider SDKs raise their own connection errors; keep the engine's contract simple.
        raise ModelCallError(f"{name} failed: {type(exc).__name__}: {exc}") from None
    if usage is not None:
        usage.incr(result.usage)
    return result.output
