"""`http.request`: one HTTP call with a bounded time and a bounded response.

A non-2xx status is a result, not a failure: the workflow or model decides what a 404 means.
Only failures to get any response at all (refused, timed out, bad TLS) raise `ToolError`.
The response is read as a stream and cut at 1 MiB so a huge download cannot exhaust memory.

Where a request may go is decided by the `NetPolicy` (`[tools.http] allow`/`deny`): loopback,
private, link-local, CGNAT, multicast and metadata addresses are refused for every caller, on
the address actually connected to and on every redirect hop (see `http_guard`). Redirects are
followed here, one hop at a time, at most `MAX_REDIRECTS` of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hearth.netrules import NetPolicy
from hearth.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolError

if TYPE_CHECKING:
    import httpx

# httpx (and with it the guard built on its transport) is imported on the first request, not
# at start: it is ~5 MB and ~50 ms that a gateway whose workflows never call http.request
# should not pay.

MAX_BODY_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
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
        import httpx

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


def _request_headers(args: HttpRequestArgs, ctx: ToolContext) -> dict[str, str]:
    """Every header the request carries is decided here, in one place: the caller's, plus
    `Idempotency-Key` (the same when an interrupted step runs again) unless the caller set one,
    so a service that honours it performs a repeated request once."""
    headers = dict(args.headers or {})
    if ctx.idempotency_key is not None and not any(
        name.lower() == "idempotency-key" for name in headers
    ):
        headers["Idempotency-Key"] = ctx.idempotency_key
    return headers


class HttpRequestTool(Tool):
    name: ClassVar[str] = "http.request"
    description: ClassVar[str] = (
        "Make an HTTP request (GET, POST, PUT, PATCH, DELETE, HEAD) and return "
        "{status, headers, body, truncated, json?}. Any status code is returned, not raised. "
        "The body is cut at 1 MiB; 'json' is present when the response is JSON. "
        "Addresses on this machine and the local network are refused unless allowed."
    )
    args_model: ClassVar[type[BaseModel]] = HttpRequestArgs
    risk: ClassVar[Risk] = Risk.MEDIUM
    read_only: ClassVar[bool] = False

    def idempotent(self, args: HttpRequestArgs) -> bool:
        return args.method in ("GET", "HEAD")

    def __init__(self, policy: NetPolicy | None = None, *, trust_env: bool = False) -> None:
        self.policy = policy or NetPolicy()
        #: Environment proxies resolve names themselves, so with them the check happens
        #: before each hop on our own resolution (a proxy the person configured is trusted).
        self.trust_env = trust_env

    def _client(self, timeout: float) -> httpx.AsyncClient:
        import httpx

        from hearth.tools.builtin.http_guard import GuardedTransport

        if self.trust_env:
            return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=True)
        return httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            transport=GuardedTransport(self.policy),
        )

    async def _send(
        self, client: httpx.AsyncClient, request: httpx.Request
    ) -> tuple[httpx.Response, bytes, bool]:
        """Send `request`, following up to MAX_REDIRECTS redirects, each hop checked again."""
        from hearth.tools.builtin.http_guard import checked_addresses

        for _hop in range(MAX_REDIRECTS + 1):
            if self.trust_env:
                url = request.url
                await checked_addresses(self.policy, url.host, url.port or _default_port(url))
            response = await client.send(request, stream=True)
            try:
                if response.next_request is None:
                    raw, truncated = await _read_limited(response)
                    return response, raw, truncated
                request = response.next_request
            finally:
                await response.aclose()
        raise ToolError(f"stopped after {MAX_REDIRECTS} redirects (the limit)")

    async def run(self, args: HttpRequestArgs, ctx: ToolContext) -> dict[str, Any]:
        import httpx

        what = f"http.request {args.method} {args.url}"
        body: dict[str, Any] = {}
        if args.json_ is not None:
            body["json"] = args.json_
        elif args.body is not None:
            body["content"] = args.body.encode("utf-8")
        try:
            # httpx's timeout bounds each phase; asyncio.timeout bounds the whole request,
            # so a server that trickles bytes cannot stretch it.
            async with asyncio.timeout(args.timeout), self._client(args.timeout) as client:
                request = client.build_request(
                    args.method, args.url, headers=_request_headers(args, ctx), **body
                )
                response, raw, truncated = await self._send(client, request)
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


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
