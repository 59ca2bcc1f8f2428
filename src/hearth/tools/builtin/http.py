"""`http.request`: one HTTP call with a bounded time and a bounded response.

A non-2xx status is a result, not a failure: the workflow or model decides what a 404 means.
Only failures to get any response at all (refused, timed out, bad TLS) raise `ToolError`.
The response is read as a stream and cut at 1 MiB so a huge download cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, ClassVar, Literal, Self

import httpx
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hearth.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolError

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 300.0

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


class HttpRequestArgs(ToolArgs):
    """Make one HTTP request and return the status, headers and body."""

    method: Method = Field(default="GET", description="HTTP method.")
    url: str = Field(description="Absolute http:// or https:// URL.")
    headers: dict[str, str] | None = Field(default=None, description="Request headers.")
    # `json` would shadow a BaseModel attribute, hence the alias.
    json_: Any = Field(
        default=None,
        alias="json",
        description="A JSON value to send as the body (sets Content-Type: application/json). "
        "Not together with 'body'.",
    )
    body: str | None = Field(
        default=None, description="A text body to send as-is (UTF-8). Not together with 'json'."
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT_S,
        gt=0,
        le=MAX_TIMEOUT_S,
        description=f"Seconds allowed for the whole request (at most {MAX_TIMEOUT_S:g}).",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise PydanticCustomError(
                "url", "Not a valid URL: {reason}", {"reason": str(exc)}
            ) from None
        if url.scheme not in ("http", "https"):
            raise PydanticCustomError("url_scheme", "URL must start with http:// or https://")
        if not url.host:
            raise PydanticCustomError("url_host", "URL must name a host")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> Self:
        if self.json_ is not None and self.body is not None:
            raise PydanticCustomError("body_conflict", "Give either 'json' or 'body', not both")
        return self


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _decode(raw: bytes, encoding: str | None) -> str:
    try:
        return raw.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


async def _read_limited(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = MAX_BODY_BYTES - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _with_idempotency_key(
    headers: dict[str, str] | None, ctx: ToolContext
) -> dict[str, str] | None:
    """Add `Idempotency-Key` (the same when an interrupted step runs again) unless the caller
    set one, so a service that honours it performs a repeated request once."""
    if ctx.idempotency_key is None or any(
        name.lower() == "idempotency-key" for name in headers or {}
    ):
        return headers
    return {**(headers or {}), "Idempotency-Key": ctx.idempotency_key}


class HttpRequestTool(Tool):
    name: ClassVar[str] = "http.request"
    description: ClassVar[str] = (
        "Make an HTTP request (GET, POST, PUT, PATCH, DELETE, HEAD) and return "
        "{status, headers, body, truncated, json?}. Any status code is returned, not raised. "
        "The body is cut at 1 MiB; 'json' is present when the response is JSON."
    )
    args_model: ClassVar[type[BaseModel]] = HttpRequestArgs
    risk: ClassVar[Risk] = Risk.MEDIUM
    read_only: ClassVar[bool] = False

    def idempotent(self, args: HttpRequestArgs) -> bool:
        return args.method in ("GET", "HEAD")

    async def run(self, args: HttpRequestArgs, ctx: ToolContext) -> dict[str, Any]:
        what = f"http.request {args.method} {args.url}"
        request: dict[str, Any] = {"headers": _with_idempotency_key(args.headers, ctx)}
        if args.json_ is not None:
            request["json"] = args.json_
        elif args.body is not None:
            request["content"] = args.body.encode("utf-8")
        try:
            # httpx's timeout bounds each phase; asyncio.timeout bounds the whole request,
            # so a server that trickles bytes cannot stretch it.
            async with (
                asyncio.timeout(args.timeout),
                httpx.AsyncClient(timeout=args.timeout, follow_redirects=True) as client,
                client.stream(args.method, args.url, **request) as response,
            ):
                raw, truncated = await _read_limited(response)
        except (TimeoutError, httpx.TimeoutException):
            raise ToolError(f"{what}: timed out after {args.timeout:g} s") from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ToolError(f"{what} failed: {reason}") from None
        except httpx.InvalidURL as exc:
            raise ToolError(f"{what} failed: invalid URL: {exc}") from None
        text = _decode(raw, response.encoding)
        result: dict[str, Any] = {
            "status": response.status_code,
            "headers": dict(response.headers.items()),
            "body": text,
            "truncated": truncated,
        }
        if not truncated and _is_json(response.headers.get("content-type", "")):
            with contextlib.suppress(ValueError):  # says JSON but is not: leave `json` out
                result["json"] = json.loads(text)
        return result
