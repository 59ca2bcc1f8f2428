"""A model wrapper that retries a failed request with less instead of failing the run.

Each *model request* (not the whole agent run) is retried, so a tool that already ran in this
run is never run again: only the request to the model is repeated. The forms tried, in order,
start at what `Capabilities` has learned for this provider:model:

1. tools with the `tool_choice` pydantic-ai picked;
2. tools without `tool_choice` (see `hearth.models.wire`), OpenAI-compatible servers only;
3. no tools: the model answers in text (the chat then tells the person tools are unavailable).

A step down happens only on failures that say "this form is not supported" on the servers we
know: an HTTP 5xx, or an answer with neither text nor tool calls (llama-cpp-python's empty 200
stream). A 4xx, a timeout or a refused connection is not about the form and is raised at once.
The form that worked is remembered for the rest of the process.

This module imports pydantic-ai; `hearth.models.factory` imports it only when it builds a model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator
from typing import Any

from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError, UnexpectedModelBehavior
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from hearth.models.capabilities import Capabilities, ToolLevel
from hearth.models.errors import describe
from hearth.models.wire import omit_tool_choice

log = logging.getLogger("hearth.models")

_FORMS = {
    ToolLevel.FULL: "with tools",
    ToolLevel.NO_CHOICE: "with tools but no tool_choice",
    ToolLevel.NONE: "without tools",
}


def is_form_failure(exc: BaseException) -> bool:
    """Whether a failed request is worth repeating in a simpler form."""
    if isinstance(exc, ModelHTTPError):
        return exc.status_code >= 500
    if isinstance(exc, ModelAPIError):
        return type(exc).__name__ == "ModelServerError"
    return isinstance(exc, UnexpectedModelBehavior)


class DegradingModel(WrapperModel):
    """Wraps a provider model; `capabilities` is shared by every request to that model."""

    def __init__(self, wrapped: Model, capabilities: Capabilities, name: str) -> None:
        super().__init__(wrapped)
        self.capabilities = capabilities
        self.hearth_name = name

    def _levels(self, params: ModelRequestParameters) -> list[ToolLevel]:
        if not params.function_tools and not params.output_tools:
            return [ToolLevel.FULL]
        return self.capabilities.ladder(bool(params.function_tools))

    @staticmethod
    def _params(params: ModelRequestParameters, level: ToolLevel) -> ModelRequestParameters:
        if level is ToolLevel.NONE and params.function_tools:
            return dataclasses.replace(params, function_tools=[])
        return params

    def _step_down(self, level: ToolLevel, following: ToolLevel, exc: BaseException) -> None:
        log.warning(
            "%s failed %s (%s); trying again %s",
            self.hearth_name,
            _FORMS[level],
            describe(exc, self.hearth_name),
            _FORMS[following],
        )
        log.debug("%s: the failed request's error", self.hearth_name, exc_info=exc)

    def _worked(self, level: ToolLevel) -> None:
        if self.capabilities.learn(level):
            log.warning(
                "%s works %s; later requests go out that way until the gateway restarts",
                self.hearth_name,
                _FORMS[level],
            )

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        levels = self._levels(model_request_parameters)
        for index, level in enumerate(levels):
            try:
                with omit_tool_choice(level >= ToolLevel.NO_CHOICE):
                    response = await self.wrapped.request(
                        messages, model_settings, self._params(model_request_parameters, level)
                    )
            except Exception as exc:
                if index + 1 == len(levels) or not is_form_failure(exc):
                    raise
                self._step_down(level, levels[index + 1], exc)
                continue
            self._worked(level)
            return response
        raise AssertionError("unreachable: the last form raises or returns")

    @contextlib.asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: Any = None,
    ) -> AsyncGenerator[StreamedResponse]:
        levels = self._levels(model_request_parameters)
        for index, level in enumerate(levels):
            async with contextlib.AsyncExitStack() as stack:
                try:
                    with omit_tool_choice(level >= ToolLevel.NO_CHOICE):
                        # Entering sends the request and reads the first chunk: an empty stream
                        # or an HTTP error surfaces here, before anything reached the caller.
                        stream = await stack.enter_async_context(
                            self.wrapped.request_stream(
                                messages,
                                model_settings,
                                self._params(model_request_parameters, level),
                                run_context,
                            )
                        )
                except Exception as exc:
                    if index + 1 == len(levels) or not is_form_failure(exc):
                        raise
                    self._step_down(level, levels[index + 1], exc)
                    continue
                self._worked(level)
                yield stream
                return
        raise AssertionError("unreachable: the last form raises or yields")
