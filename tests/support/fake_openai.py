"""A fake OpenAI-compatible chat completions server for tests.

Tests that exercise model steps, chat and heartbeats must go through the *real* provider code
path (pydantic-ai's OpenAI chat model driving the ``openai`` SDK over HTTP), because that is
where wire-format bugs, streaming quirks, retries and timeouts live. Mocking the SDK or using
pydantic-ai's ``TestModel`` would skip all of that. So this module serves a small, scriptable
imitation of ``/v1/chat/completions`` on loopback, in the test's own event loop, and records
what it was sent.

Usage::

    async with FakeOpenAI() as fake:
        fake.script(ToolCall("get_weather", {"city": "Oslo"}), Text("It is sunny."))
        model = OpenAIChatModel(
            "fake-model", provider=OpenAIProvider(base_url=fake.base_url, api_key="test")
        )
        ...
        assert fake.calls == 2

Each chat completions request pops one reply spec from a FIFO queue (``script``); an empty
queue answers ``Text("ok")``, or the spec given to ``script_forever``. A spec is one of the
dataclasses below, or a callable that receives the request body and returns a spec, so a test
can answer according to the conversation so far.

``mode="llamacpp"`` imitates llama.cpp's server, which cannot force tool calls or follow a JSON
schema response format: such requests get HTTP 400 without consuming a scripted reply, which
lets tests check that callers fall back to prompted output.

``quirks=Quirks(...)`` imitates the failures of weaker servers, each one switchable on its own;
``LLAMA_CPP_PYTHON`` holds those of llama-cpp-python's server (``--chat_format
chatml-function-calling``) as seen from Hearth: an empty 200 stream for a streamed request
carrying tools and ``tool_choice``, HTTP 500 for ``tool_choice: "required"`` and for an
assistant message with ``content: null``. A quirk's answer does not consume a scripted reply;
``quirked`` counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import re
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeAlias

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL_ID = "fake-model"
"""The only model ``GET /v1/models`` lists; requests may still name any model."""

DEFAULT_REPLY_TEXT = "ok"
"""What the server answers when nothing is scripted, so unscripted calls never hang or fail."""

ARGUMENT_FRAGMENT_SIZE = 8
"""Characters of tool call arguments per streamed chunk: small, so that parsers see fragments."""

Mode: TypeAlias = Literal["standard", "llamacpp"]
JsonDict: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class Text:
    """An assistant text reply.

    When streamed, ``chunks`` are sent as successive content deltas; by default the text is
    split word by word (each word keeps its trailing whitespace), so concatenating the deltas
    always gives back ``text``. Given chunks must join to ``text`` too, which keeps scripts honest.
    """

    text: str
    chunks: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.chunks is not None and "".join(self.chunks) != self.text:
            raise ValueError("Text.chunks must join to Text.text")

    def deltas(self) -> list[str]:
        """The content deltas to stream, never empty strings."""
        if self.chunks is not None:
            return [chunk for chunk in self.chunks if chunk]
        return re.findall(r"\s*\S+\s*|\s+", self.text)


@dataclass(frozen=True)
class JsonContent:
    """An assistant text reply that is the JSON encoding of ``value``.

    This is what a model returns for prompted or native (``response_format``) structured output.
    It streams like ``Text``, in whitespace-separated pieces of the JSON.
    """

    value: Any
    chunks: Sequence[str] | None = None

    def as_text(self) -> Text:
        return Text(json.dumps(self.value), self.chunks)


@dataclass(frozen=True)
class ToolCall:
    """One function call by the assistant.

    ``arguments`` is usually a dict, encoded as JSON; a string is sent verbatim, so tests can
    send malformed arguments. ``id=None`` takes the next ``call_<n>`` id from a counter that
    runs for the server's lifetime, so ids never repeat within a conversation.
    """

    name: str
    arguments: JsonDict | str = field(default_factory=dict)
    id: str | None = None

    def encoded_arguments(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class ToolCalls:
    """Several (parallel) tool calls in one assistant message, optionally preceded by text."""

    calls: Sequence[ToolCall]
    content: str | None = None

    def __post_init__(self) -> None:
        if not self.calls:
            raise ValueError("ToolCalls needs at least one ToolCall")


@dataclass(frozen=True)
class HttpError:
    """An OpenAI-style error response: ``{"error": {"message", "type", "param", "code"}}``.

    The ``openai`` SDK retries 408, 409, 429 and 5xx responses (twice by default), and each
    retry pops another reply. ``should_retry`` sends the SDK's ``x-should-retry`` header to
    switch that off (``False``) or force it (``True``); ``None`` sends no header.
    """

    status: int
    message: str = "fake error"
    type: str | None = None
    code: str | None = None
    should_retry: bool | None = None
    #: Append the request's Authorization header to the message, as a careless server (or a
    #: proxy's error page) does: what a key leak through an error body looks like.
    echo_authorization: bool = False

    def response(self, authorization: str | None = None) -> JSONResponse:
        headers = {}
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        message = self.message
        if self.echo_authorization:
            message = f"{message}: {authorization or '(no Authorization header)'}"
        return _error_response(
            self.status, message, self.type or _error_type(self.status), self.code, headers
        )


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` before answering with ``then`` (the default reply when ``None``).

    The wait ends early, and nothing is answered, when the client disconnects (as a timed-out
    or cancelled client does) or when the server shuts down, so timeout tests never leave a
    sleeping request behind. ``FakeOpenAI.disconnects`` counts the waits a client abandoned.
    """

    seconds: float
    then: Spec | None = None


@dataclass(frozen=True)
class Quirks:
    """Failures of weak OpenAI-compatible servers, checked before any scripted reply.

    Each ``*_status`` is the HTTP status answered (None: the quirk is off); 5xx bodies carry a
    Python traceback as their message, as llama-cpp-python's server sends them.
    """

    #: A streamed request with tools and a ``tool_choice`` gets an empty 200 stream.
    empty_stream_with_tool_choice: bool = False
    #: A streamed request with tools (with or without ``tool_choice``) gets an empty 200 stream.
    empty_stream_with_tools: bool = False
    #: ``tool_choice: "required"`` or naming a function.
    forced_choice_status: int | None = None
    #: Any ``tool_choice`` at all.
    tool_choice_status: int | None = None
    #: Any request offering tools.
    tools_status: int | None = None
    #: An assistant message whose ``content`` is null.
    null_content_status: int | None = None
    #: Every request, whatever it holds (a server that is simply broken).
    always_status: int | None = None


LLAMA_CPP_PYTHON = Quirks(
    empty_stream_with_tool_choice=True, forced_choice_status=500, null_content_status=500
)
"""llama-cpp-python's server (``--chat_format chatml-function-calling``) as issue 10 found it."""

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3/site-packages/llama_cpp/server/errors.py", line 171, in '
    "custom_route_handler\n    response = await original_route_handler(request)\n"
    + '  File "/usr/lib/python3/site-packages/llama_cpp/llama_chat_format.py", line 2110, in '
    "chatml_function_calling\n    prompt = template_renderer.render(...)\n"
    * 12
    + 'TypeError: can only concatenate str (not "NoneType") to str'
)
"""A 5xx message as llama-cpp-python sends it: a whole traceback, about 2 KB."""


ReplySpec: TypeAlias = Text | JsonContent | ToolCall | ToolCalls | HttpError | Delay
"""A concrete reply."""

Spec: TypeAlias = ReplySpec | Callable[[JsonDict], "Spec | Awaitable[Spec]"]
"""A reply, or a function of the request body (sync or async) that decides the reply."""


def _error_type(status: int) -> str:
    """The ``error.type`` OpenAI uses for a status, so SDK error mapping sees familiar values."""
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")


def _error_response(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _text_of(content: Any) -> str:
    """The text in a message ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_of(part.get("text")) for part in content if isinstance(part, dict))
    return ""


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate (about four characters a token, at least one)."""
    return len(text) // 4 + 1


def prompt_text(body: JsonDict) -> str:
    """All the text a request sends the model: message contents and earlier tool call arguments."""
    parts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        parts.append(_text_of(message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.append(str(function.get("name", "")) + str(function.get("arguments", "")))
    return "".join(parts)


def tool_names(body: JsonDict) -> list[str]:
    """The names of the function tools a request offers, in order."""
    names: list[str] = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def tool_results(body: JsonDict) -> list[JsonDict]:
    """The ``role: "tool"`` messages of a request, i.e. results of earlier tool calls."""
    return [
        message
        for message in body.get("messages") or []
        if isinstance(message, dict) and message.get("role") == "tool"
    ]


def last_user_text(body: JsonDict) -> str:
    """The text of the last user message, handy for callables that echo or branch on input."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


@dataclass
class _Reply:
    """A resolved reply: the assistant message to send, in a form both encodings can use."""

    content: str | None
    deltas: list[str]  # how ``content`` is split when streamed
    calls: list[tuple[str, str, str]]  # (id, name, encoded arguments)

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.calls else "stop"

    def completion_text(self) -> str:
        return (self.content or "") + "".join(name + args for _, name, args in self.calls)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling alone and starts and stops promptly.

    ``uvicorn.Server.capture_signals`` replaces SIGINT/SIGTERM handlers when run in the main
    thread, which would steal Ctrl-C from pytest; there is no event for "started"; and the
    stock main loop polls ``should_exit`` every 0.1 s, which every test would pay on exit.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()
        self.exit_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default response headers, as the stock loop does first
        await self.exit_requested.wait()

    def request_exit(self) -> None:
        self.should_exit = True
        self.exit_requested.set()


class FakeOpenAI:
    """A scriptable OpenAI-compatible server on loopback, run and stopped by ``async with``.

    Attributes a test reads:

    - ``base_url``: ``http://127.0.0.1:PORT/v1``, for ``OpenAIProvider(base_url=...)``;
    - ``requests``: every chat completions request body, in arrival order, including rejected
      and invalid ones (a body that is not a JSON object is recorded as ``{"_raw": text}``);
    - ``calls``: the number of chat completions requests received (``len(requests)``);
    - ``rejected``: how many were refused for llama.cpp-unsupported features;
    - ``disconnects``: how many ``Delay`` waits ended because the client went away.
    """

    def __init__(self, mode: Mode = "standard", quirks: Quirks | None = None) -> None:
        if mode not in ("standard", "llamacpp"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode: Mode = mode
        self.quirks = quirks or Quirks()
        self.requests: list[JsonDict] = []
        self.rejected = 0
        self.quirked = 0
        self.disconnects = 0
        self._queue: deque[Spec] = deque()
        self._forever: Spec | None = None
        self._ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._changed = asyncio.Condition()
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # -- test-facing API -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not running; use `async with FakeOpenAI() as fake`")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        return len(self._queue)

    def script(self, *specs: Spec) -> None:
        """Queue replies; each chat completions request (not rejected) uses the next one."""
        self._queue.extend(specs)

    def script_forever(self, spec: Spec) -> None:
        """Answer with ``spec`` whenever the queue is empty, instead of ``Text("ok")``."""
        self._forever = spec

    async def wait_for_calls(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` chat completions requests have arrived.

        For tests that start a request in the background (e.g. one answered with a long
        ``Delay``) and must act once the server has it. ``timeout`` is only a safety net.
        """
        await self._wait_until(lambda: self.calls >= count, timeout)

    async def wait_for_disconnects(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` delayed requests were abandoned by their client.

        The server notices a disconnect a moment after the client gives up, so tests that
        assert on ``disconnects`` wait here instead of sleeping. ``timeout`` is a safety net.
        """
        await self._wait_until(lambda: self.disconnects >= count, timeout)

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on a free loopback port, served by a task in the running event loop."""
        if self._task is not None:
            raise RuntimeError("FakeOpenAI is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._closing.clear()
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        listening = asyncio.create_task(self._server.listening.wait())
        try:
            await asyncio.wait({self._task, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listening.cancel()
        if not self._server.listening.is_set():
            task, self._task, self._port = self._task, None, None
            sock.close()
            await task  # re-raises why it failed to start
            raise RuntimeError("fake OpenAI server exited before listening")

    async def stop(self) -> None:
        """Stop listening, end pending delays, and wait for the server task to finish."""
        if self._task is None or self._server is None:
            return
        self._closing.set()
        self._server.request_exit()
        task, self._task = self._task, None
        try:
            await task
        finally:
            self._port = None

    # -- HTTP handlers -----------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "hearth-tests"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat_completions(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.requests.append({"_raw": raw.decode("utf-8", "replace")})
            await self._notify()
            return _error_response(400, "request body must be a JSON object")
        self.requests.append(body)
        await self._notify()

        if problem := self._invalid(body):
            return _error_response(400, problem)
        if self.mode == "llamacpp" and (problem := self._unsupported_by_llamacpp(body)):
            self.rejected += 1
            return _error_response(400, problem)
        if (failure := self._quirk(body)) is not None:
            self.quirked += 1
            return failure

        reply = await self._resolve(self._next_spec(), body, request)
        if reply is None:  # the client left while we were waiting
            return Response(status_code=499)
        if isinstance(reply, Response):
            return reply
        completion_id = f"chatcmpl-fake-{next(self._ids)}"
        model = str(body["model"])
        usage = self._usage(body, reply)
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            chunks = self._chunks(completion_id, model, reply, usage if include_usage else None)
            return StreamingResponse(
                _sse(chunks),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        return JSONResponse(self._completion(completion_id, model, reply, usage))

    # -- request checks ----------------------------------------------------------------------

    @staticmethod
    def _invalid(body: JsonDict) -> str | None:
        """Why the body is not a plausible chat completions request, if it is not."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty array"
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return f"messages[{i}] must be an object with a 'role'"
        return None

    @staticmethod
    def _unsupported_by_llamacpp(body: JsonDict) -> str | None:
        """What llama.cpp's server would refuse in this request, if anything."""
        tool_choice = body.get("tool_choice")
        if tool_choice == "required":
            return "tool_choice 'required' is not supported"
        if isinstance(tool_choice, dict):
            return "tool_choice forcing a specific function is not supported"
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            return "response_format type 'json_schema' is not supported"
        return None

    def _quirk(self, body: JsonDict) -> Response | None:
        """The failure ``self.quirks`` give this request, if any."""
        quirks = self.quirks
        tools = bool(body.get("tools"))
        choice = body.get("tool_choice")
        forced = choice == "required" or isinstance(choice, dict)
        null_content = any(
            isinstance(m, dict) and m.get("role") == "assistant" and m.get("content", "") is None
            for m in body.get("messages") or []
        )
        for status, applies in (
            (quirks.always_status, True),
            (quirks.null_content_status, null_content),
            (quirks.tools_status, tools),
            (quirks.tool_choice_status, tools and choice is not None),
            (quirks.forced_choice_status, tools and forced),
        ):
            if status is not None and applies:
                return _error_response(status, TRACEBACK, _error_type(status))
        empty = quirks.empty_stream_with_tools or (
            quirks.empty_stream_with_tool_choice and choice is not None
        )
        if body.get("stream") and tools and empty:
            return StreamingResponse(_sse([]), media_type="text/event-stream")
        return None

    # -- replies -----------------------------------------------------------------------------

    def _next_spec(self) -> Spec:
        if self._queue:
            return self._queue.popleft()
        if self._forever is not None:
            return self._forever
        return Text(DEFAULT_REPLY_TEXT)

    async def _resolve(
        self, spec: Spec, body: JsonDict, request: Request
    ) -> _Reply | Response | None:
        """Turn a spec into a reply, running callables and waiting out delays."""
        while True:
            if isinstance(spec, Delay):
                if not await self._wait(spec.seconds, request):
                    return None
                spec = spec.then if spec.then is not None else Text(DEFAULT_REPLY_TEXT)
            elif isinstance(spec, HttpError):
                return spec.response(request.headers.get("authorization"))
            elif isinstance(spec, JsonContent):
                spec = spec.as_text()
            elif isinstance(spec, Text):
                return _Reply(spec.text, spec.deltas(), [])
            elif isinstance(spec, ToolCall):
                spec = ToolCalls([spec])
            elif isinstance(spec, ToolCalls):
                calls = [
                    (call.id or f"call_{next(self._call_ids)}", call.name, call.encoded_arguments())
                    for call in spec.calls
                ]
                deltas = Text(spec.content).deltas() if spec.content else []
                return _Reply(spec.content, deltas, calls)
            elif callable(spec):
                result = spec(body)
                spec = await result if inspect.isawaitable(result) else result
            else:
                raise TypeError(f"not a reply spec: {spec!r}")

    async def _wait(self, seconds: float, request: Request) -> bool:
        """Sleep, unless the client disconnects first; False if it did.

        The body has been read, so the next ASGI ``receive`` only returns once the client
        disconnects. Server shutdown also ends the wait, and then the reply is still sent.
        """
        sleep = asyncio.create_task(asyncio.sleep(seconds))
        closing = asyncio.create_task(self._closing.wait())
        gone = asyncio.create_task(_disconnected(request))
        try:
            await asyncio.wait({sleep, closing, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleep, closing, gone):
                task.cancel()
        if gone.done() and not gone.cancelled():
            self.disconnects += 1
            await self._notify()
            return False
        return True

    def _usage(self, body: JsonDict, reply: _Reply) -> JsonDict:
        prompt = estimate_tokens(prompt_text(body))
        completion = estimate_tokens(reply.completion_text())
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    @staticmethod
    def _completion(completion_id: str, model: str, reply: _Reply, usage: JsonDict) -> JsonDict:
        message: JsonDict = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.calls:
            message["tool_calls"] = [
                {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}
                for id_, name, args in reply.calls
            ]
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": usage,
            "system_fingerprint": None,
        }

    @staticmethod
    def _chunks(
        completion_id: str, model: str, reply: _Reply, usage: JsonDict | None
    ) -> list[JsonDict]:
        """The ``chat.completion.chunk`` objects OpenAI would stream for ``reply``.

        The first chunk carries the role; text follows as content deltas; each tool call starts
        with a chunk carrying its id, type and name (and empty arguments), then argument
        fragments keyed only by ``index``; the last choice chunk has an empty delta and the
        finish reason. With ``include_usage`` every chunk has ``usage: null`` and a final chunk
        with no choices carries the usage.
        """
        created = int(time.time())

        def chunk(delta: JsonDict, finish_reason: str | None = None) -> JsonDict:
            data: JsonDict = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if usage is not None:
                data["usage"] = None
            return data

        chunks = [chunk({"role": "assistant", "content": "" if reply.content else None})]
        chunks.extend(chunk({"content": delta}) for delta in reply.deltas)
        for index, (id_, name, args) in enumerate(reply.calls):
            start = {"index": index, "id": id_, "type": "function"}
            chunks.append(
                chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
            )
            for i in range(0, len(args), ARGUMENT_FRAGMENT_SIZE):
                fragment = args[i : i + ARGUMENT_FRAGMENT_SIZE]
                chunks.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
                )
        chunks.append(chunk({}, reply.finish_reason))
        if usage is not None:
            final = chunk({})
            final["choices"] = []
            final["usage"] = usage
            chunks.append(final)
        return chunks


async def _disconnected(request: Request) -> None:
    """Return once the client has disconnected (the request body must already be read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _sse(chunks: list[JsonDict]) -> AsyncIterator[str]:
    """Server-sent events as OpenAI sends them, ending with ``data: [DONE]``."""
    for data in chunks:
        yield f"data: {json.dumps(data)}\n\n"
        await asyncio.sleep(0)  # let each event go out on its own, as a real stream would
    yield "data: [DONE]\n\n"
