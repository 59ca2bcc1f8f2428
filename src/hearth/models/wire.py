"""What goes over the wire to OpenAI-compatible servers, adjusted for weak local ones.

pydantic-ai builds the chat completions body; a few servers people run at home reject parts of
it that OpenAI accepts. This transport rewrites the JSON body of `/chat/completions` requests:

- an assistant message never carries `content: null` (llama-cpp-python's server answers HTTP
  500): it becomes `""`, which every server accepts;
- `tool_choice` is left out while the calling task asks for it (`omit_tool_choice`): a server
  that chokes on `tool_choice` usually still takes the tools themselves.

The second is a per-request decision made by `DegradingModel`, passed down through a context
variable: the HTTP call runs in the task that made the model request, so concurrent requests to
the same model (a chat and the heartbeat) never see each other's choice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import httpx2

_omit_tool_choice: ContextVar[bool] = ContextVar("hearth_omit_tool_choice", default=False)


@contextlib.contextmanager
def omit_tool_choice(omit: bool = True) -> Iterator[None]:
    """Within this block, requests made by this task are sent without `tool_choice`."""
    token = _omit_tool_choice.set(omit)
    try:
        yield
    finally:
        _omit_tool_choice.reset(token)


def adjust_body(body: dict[str, Any], *, omit_choice: bool) -> bool:
    """Rewrite a chat completions body in place; True when anything changed."""
    changed = False
    for message in body.get("messages") or []:
        if (
            isinstance(message, dict)
            and message.get("role") == "assistant"
            and "content" in message
            and message["content"] is None
        ):
            message["content"] = ""
            changed = True
    if omit_choice and "tool_choice" in body:
        del body["tool_choice"]
        changed = True
    return changed


class CompatibleTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport that applies `adjust_body` to chat completions requests."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path.endswith("/chat/completions"):
            request = await self._adjusted(request)
        return await self._inner.handle_async_request(request)

    async def _adjusted(self, request: httpx2.Request) -> httpx2.Request:
        raw = await request.aread()
        try:
            body = json.loads(raw)
        except ValueError:
            return request
        if not isinstance(body, dict) or not adjust_body(body, omit_choice=_omit_tool_choice.get()):
            return request
        headers = httpx2.Headers(request.headers)
        headers.pop("content-length", None)
        return httpx2.Request(
            request.method,
            request.url,
            headers=headers,
            content=json.dumps(body).encode(),
            extensions=request.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
