"""Chat: persistent sessions, streamed replies, tool calls a person approves.

A `chat.send` starts a stream task that is not tied to the connection that asked: the reply
goes out as bus events to every client, so a phone sees the tool approval a laptop's stream
raised, and a client that disconnects neither loses the approval nor leaves the model loop
running forever (unanswered approvals time out as denied).

Tools come from the shared registry. Each call goes through `_call_tool`, which enforces the
policy: `auto` runs, `ask` persists an approval and waits for the first answer from any client
(or the timeout), `deny` is never offered to the model. A denied call never runs; the model is
told and continues.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
import weakref
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.approval_events import publish_resolved
from hearth.chat.errors import (
    NoPendingToolApprovalError,
    SessionBusyError,
    SessionNotFoundError,
)
from hearth.chat.history import bound_history, parse
from hearth.events import DomainEvent, EventBus
from hearth.metrics import Metrics
from hearth.models import ModelFactory, ResolvedModel, describe
from hearth.store import Database
from hearth.store.approvals import ApprovalRepository
from hearth.store.chat import ChatRepository
from hearth.store.records import ApprovalRecord, SessionRecord
from hearth.tools import Tool as HearthTool
from hearth.tools import ToolContext, ToolError, ToolRegistry
from hearth.tools.policy import decide

if TYPE_CHECKING:
    from pydantic_ai import RunContext, Tool
    from pydantic_ai.usage import RunUsage

# pydantic-ai is imported where a reply is streamed, not at module level: the gateway imports
# this module at start, and most starts (and every CLI command) never reach a model.

log = logging.getLogger("hearth.chat")

RESOLVED_TOPIC = "tool.approval.resolved"
CANCEL_TOPIC = "chat.cancel.requested"
DEFAULT_INSTRUCTIONS = (
    "You are Hearth, the user's personal assistant running on their own machine. Be concise. "
    "Use tools when they help; some need the user's approval, and if a call is denied, do not "
    "retry it unless the user asks."
)


def tools_unavailable_note(model: str) -> str:
    """Said before a reply when `model` failed with tools and answers without them."""
    return (
        f"(Tools are unavailable with {model}: it failed when offered them, so this answer "
        "uses none.)\n\n"
    )


@dataclass(frozen=True)
class ChatConfig:
    node_id: str
    max_history_messages: int = 100
    max_history_tokens: int = 60_000
    approval_timeout: timedelta = timedelta(minutes=5)
    busy_stale: timedelta = timedelta(minutes=30)
    tool_policy: dict[str, str] = field(default_factory=dict)
    instructions: str = DEFAULT_INSTRUCTIONS
    coalesce_s: float = 0.005


@dataclass(frozen=True)
class Started:
    request_id: str
    session: SessionRecord
    model: str
    created: bool


def wire_name(tool_name: str) -> str:
    """Providers accept [a-zA-Z0-9_-] only: `file.read` is offered as `file_read`."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in tool_name)


def _now() -> datetime:
    return datetime.now(UTC)


class _Deltas:
    """Coalesces text deltas: at most one frame per `delay_s`, and none waits longer.

    Leading edge: a delta after a quiet spell goes out at once (the first token is never held);
    deltas arriving within `delay_s` of the last frame are sent together when it has passed.
    The timer is only the fallback for a model that pauses: while deltas keep arriving, the
    one that finds the window already over publishes the buffer itself, so a timer firing
    late (the loop busy parsing a large chunk of the stream) cannot stretch any delta's wait.
    """

    def __init__(self, publish: Any, request_id: str, delay_s: float) -> None:
        self._publish = publish
        self._request_id = request_id
        self._delay = delay_s
        self._buffer: list[str] = []
        self._handle: asyncio.TimerHandle | None = None
        self._last_sent = -1e9

    def add(self, text: str) -> None:
        if not text:
            return
        self._buffer.append(text)
        loop = asyncio.get_running_loop()
        wait = self._last_sent + self._delay - loop.time()
        if wait <= 0:
            self.flush()
        elif self._handle is None:
            self._handle = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._buffer:
            text, self._buffer = "".join(self._buffer), []
            self._last_sent = asyncio.get_running_loop().time()
            self._publish("chat.stream.delta", {"requestId": self._request_id, "delta": text})


class ChatService:
    #: Where model requests and token use are recorded; the composition root sets it.
    metrics: Metrics | None = None

    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        models: ModelFactory,
        tools: ToolRegistry,
        workspace: Path,
        config: ChatConfig,
    ) -> None:
        self.db = db
        self.bus = bus
        self.models = models
        self.tools = tools
        self.workspace = workspace
        self.config = config
        self.repo = ChatRepository(db)
        self.approvals = ApprovalRepository()
        self._streams: dict[str, tuple[asyncio.Task[None], str]] = {}
        #: Keyed by (session id, tool call id): call ids repeat across sessions.
        self._waiters: dict[tuple[str, str], asyncio.Future[bool]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._schemas: weakref.WeakKeyDictionary[HearthTool, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        #: New sessions whose row is being written while their first reply already streams.

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, exclusive: bool = False) -> None:
        """`exclusive` (SQLite: one gateway process): whatever a previous process left behind
        (a session marked busy, tool approvals nobody waits for) belongs to a stream that died
        with it, so it is cleared now instead of after the stale timeouts."""
        if exclusive:
            await self._clear_leftovers()
        resolved = self.bus.subscribe(RESOLVED_TOPIC, CANCEL_TOPIC)
        self._background = [
            asyncio.create_task(self._listen(resolved), name="chat-bus"),
            asyncio.create_task(self._expire_loop(), name="chat-approval-expiry"),
        ]

    async def stop(self) -> None:
        streams = [task for task, _ in self._streams.values()]
        for task in [*streams, *self._background]:
            task.cancel()
        await asyncio.gather(*streams, *self._background, return_exceptions=True)

    async def _listen(self, subscription: Any) -> None:
        async for event in subscription:
            if event.topic == RESOLVED_TOPIC:
                key = (event.data.get("sessionId") or "", event.data.get("toolCallId", ""))
                waiter = self._waiters.get(key)
                if waiter is not None and not waiter.done():
                    waiter.set_result(bool(event.data.get("approved")))
            elif event.topic == CANCEL_TOPIC:
                stream = self._streams.get(event.data.get("requestId", ""))
                if stream is not None:
                    stream[0].cancel()

    async def _clear_leftovers(self) -> None:
        now = _now()
        await self.repo.release_all()
        async with self.db.begin() as conn:
            for approval in await self.approvals.pending(conn, kinds=["tool"]):
                await self.approvals.resolve(
                    conn,
                    approval.id,
                    "expired",
                    by=None,
                    comment="the gateway restarted before an answer",
                    now=now,
                )

    async def _expire_loop(self) -> None:
        """Pending tool approvals whose stream is gone (a crash) must not wait forever."""
        while True:
            try:
                now = _now()
                async with self.db.begin() as conn:
                    for approval in await self.approvals.pending(conn, kinds=["tool"]):
                        if approval.expires_at and approval.expires_at < now:
                            await self.approvals.resolve(
                                conn,
                                approval.id,
                                "expired",
                                by=None,
                                comment="timed out",
                                now=now,
                            )
            except Exception:
                log.exception("could not expire old tool approvals")
            await asyncio.sleep(30)

    def _publish(self, topic: str, data: dict[str, Any]) -> None:
        self.bus.publish(DomainEvent(topic, data))

    # -- requests ---------------------------------------------------------------------------

    async def send(
        self,
        content: str,
        *,
        session_id: str | None = None,
        model: str | None = None,
        agent_id: str | None = None,
    ) -> Started:
        """Validate, claim the session and start streaming; raises before anything streams."""
        session: SessionRecord | None = None
        if session_id is not None:
            session = await self.repo.get(session_id)
            if session is None:
                raise SessionNotFoundError(
                    f"no session {session_id!r}; list them with session.list (hearth chat: "
                    "/sessions)"
                )
        resolved = self.models.resolve(model or (session.model if session else None))
        now = _now()
        created = session is None
        request_id = str(uuid.uuid4())
        if session is None:
            session = SessionRecord(
                id=str(uuid.uuid4()),
                session_key=f"s-{secrets.token_hex(4)}",
                title=None,
                model=resolved.name,
                agent_id=agent_id,
                approved_tools=[],
                message_count=0,
                active_request_id=request_id,  # created already claimed: one write, not two
                active_since=now,
                created_at=now,
                updated_at=now,
            )
            # Written while the model request already runs (the first token should not wait
            # for a commit), but committed before the client hears of the session: the reply
            # below and the first delta (see `_stream`) both wait for it, so a crash right
            # after the reply cannot lose a session the client was told about.
            # Announced inside the same task as the commit, so by the time anything can see
            # the insert as done (`done()` or `await`) `session.created` is already published
            # and always precedes the reply's first delta. (A done callback would not do: it
            # runs one loop turn later, after a stream that only checks `done()`.)
            saved: asyncio.Future[None] | None = asyncio.ensure_future(
                self._create_and_announce(session)
            )
        elif not await self.repo.claim(session.id, request_id, now, now - self.config.busy_stale):
            raise SessionBusyError(
                f"session {session.session_key} is still answering; wait for its "
                "chat.stream.end or send chat.cancel"
            )
        else:
            saved = None
        task = asyncio.create_task(
            self._stream(request_id, session, resolved, content, saved=saved),
            name=f"chat-{request_id}",
        )
        self._streams[request_id] = (task, session.id)
        if saved is not None:
            try:
                await asyncio.shield(saved)
            except BaseException:
                task.cancel()  # the session was never stored: nothing may stream for it
                raise
        return Started(request_id, session, resolved.name, created)

    async def _create_and_announce(self, session: SessionRecord) -> None:
        await self.repo.create(session)
        self._publish(
            "session.created", {"sessionId": session.id, "sessionKey": session.session_key}
        )

    async def cancel(self, request_id: str) -> bool:
        stream = self._streams.get(request_id)
        if stream is not None:
            stream[0].cancel()
            await asyncio.wait({stream[0]}, timeout=10)
            return True
        if await self.repo.answering(request_id):
            self._publish(CANCEL_TOPIC, {"requestId": request_id})
            return True
        return False

    def busy(self) -> bool:
        """True while any stream runs on this node (the heartbeat defers to chats)."""
        return bool(self._streams)

    # -- the stream -------------------------------------------------------------------------

    async def _stream(
        self,
        request_id: str,
        session: SessionRecord,
        resolved: ResolvedModel,
        content: str,
        *,
        saved: asyncio.Future[None] | None = None,
    ) -> None:
        """Run one reply. `saved` is the pending insert of a brand-new session (no history).

        A brand-new session whose first reply fails or is cancelled is deleted again: it holds
        no message, and a list of sessions should not fill up with failed attempts.
        """
        from pydantic_ai import Agent
        from pydantic_ai.messages import (
            ModelMessagesTypeAdapter,
            PartDeltaEvent,
            PartStartEvent,
            TextPart,
            TextPartDelta,
        )
        from pydantic_ai.usage import RunUsage

        deltas = _Deltas(self._publish, request_id, self.config.coalesce_s)
        started = time.monotonic()
        usage = RunUsage()
        status = "completed"
        note_pending = False
        try:
            await self.tools.prepare()  # MCP servers start on first use
            tools = self._tools_for(session, request_id, deltas)
            # Said once per reply, before its text, when the model answers without the tools
            # it was offered because it failed with them (learned, not configured).
            note_pending = bool(tools) and resolved.capabilities.tools_override is None
            stored = [] if saved is not None else await self.repo.messages(session.id)
            history = bound_history(
                parse(stored),
                max_messages=self.config.max_history_messages,
                max_tokens=self.config.max_history_tokens,
            )
            agent: Agent[None, str] = Agent(
                resolved.model, instructions=self.config.instructions, tools=tools
            )

            async def on_events(ctx: RunContext[None], events: Any) -> None:
                nonlocal usage, note_pending
                usage = ctx.usage
                async for event in events:
                    if saved is not None and not saved.done():
                        # No delta before the session is committed (and so before the
                        # chat.stream.start reply that names it).
                        await asyncio.shield(saved)
                    if note_pending and resolved.capabilities.tools_unavailable:
                        note_pending = False
                        deltas.add(tools_unavailable_note(resolved.name))
                    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                        deltas.add(event.part.content)
                    elif isinstance(event, PartDeltaEvent) and isinstance(
                        event.delta, TextPartDelta
                    ):
                        deltas.add(event.delta.content_delta)

            result = await agent.run(
                content,
                message_history=history,
                event_stream_handler=on_events,
                model_settings={"timeout": resolved.timeout_s},
            )
            usage = result.usage
            deltas.flush()
            new_messages = json.loads(ModelMessagesTypeAdapter.dump_json(result.new_messages()))
            if saved is not None:
                await saved
            await self.repo.append(
                session.id,
                request_id,
                new_messages,
                self._usage_row(request_id, resolved.name, usage, status),
                _now(),
                title=content.strip().splitlines()[0][:80] if content.strip() else None,
            )
        except asyncio.CancelledError:
            status = "cancelled"
            deltas.flush()
            await self._record_usage_only(
                session.id, request_id, resolved.name, usage, status, saved
            )
        except Exception as exc:
            status = "error"
            deltas.flush()
            reason = describe(exc, resolved.name)
            self._publish(
                "chat.error", {"requestId": request_id, "code": "MODEL_ERROR", "message": reason}
            )
            if _is_model_failure(exc):
                log.warning("chat request %s failed: %s", request_id, reason)
                log.debug("chat request %s: the model error", request_id, exc_info=exc)
            else:
                log.exception("chat stream %s failed", request_id)
            await self._record_usage_only(
                session.id, request_id, resolved.name, usage, status, saved, discard=True
            )
        finally:
            self._streams.pop(request_id, None)
            try:
                if saved is not None:
                    await asyncio.shield(saved)
                await self.repo.release(session.id, request_id)
            except Exception:
                log.exception("could not release session %s", session.id)
            if self.metrics is not None:
                provider, _, model = resolved.name.partition(":")
                self.metrics.model_request(
                    provider,
                    model or provider,
                    status,
                    time.monotonic() - started,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                )
            self._publish(
                "chat.stream.end",
                {
                    "requestId": request_id,
                    "sessionId": session.id,
                    "status": status,
                    "usage": {
                        "inputTokens": usage.input_tokens,
                        "outputTokens": usage.output_tokens,
                        "totalTokens": usage.input_tokens + usage.output_tokens,
                    },
                },
            )

    @staticmethod
    def _usage_row(request_id: str, model: str, usage: RunUsage, status: str) -> dict[str, Any]:
        return {
            "request_id": request_id,
            "model": model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "requests": usage.requests,
            "status": status,
            "created_at": _now(),
        }

    async def _record_usage_only(
        self,
        session_id: str,
        request_id: str,
        model: str,
        usage: RunUsage,
        status: str,
        saved: asyncio.Future[None] | None = None,
        *,
        discard: bool = False,
    ) -> None:
        """After a failed or cancelled reply: record its usage. With `discard` (a failure),
        when this was the first request of a new session (`saved`), delete that session
        instead: it holds no message, and nobody wants a list of failed attempts. A session
        whose first reply was cancelled is kept (the person chose to stop it)."""
        try:
            if saved is not None:
                await asyncio.shield(saved)
                if discard:
                    await asyncio.shield(self.repo.delete(session_id))
                    return
            await asyncio.shield(
                self.repo.append(
                    session_id,
                    request_id,
                    [],
                    self._usage_row(request_id, model, usage, status),
                    _now(),
                    title=None,
                )
            )
        except Exception:
            log.exception("could not record usage of %s", request_id)

    # -- tools ------------------------------------------------------------------------------

    def _schema(self, tool: HearthTool) -> dict[str, Any]:
        """A tool's argument schema never changes; build each once. Keyed by the tool object:
        an MCP server whose tool list changed brings new objects, with their new schemas."""
        schema = self._schemas.get(tool)
        if schema is None:
            schema = self._schemas[tool] = tool.json_schema()
        return schema

    def policy(self, tool: HearthTool, session: SessionRecord) -> str:
        return decide(tool, self.config.tool_policy, session.approved_tools)

    def _tools_for(
        self, session: SessionRecord, request_id: str, deltas: _Deltas
    ) -> list[Tool[None]]:
        from pydantic_ai import Tool

        offered: list[Tool[None]] = []
        for tool in self.tools:
            if self.policy(tool, session) == "deny":
                continue

            async def call(ctx: RunContext[None], _tool: HearthTool = tool, **kwargs: Any) -> Any:
                deltas.flush()
                return await self._call_tool(_tool, session.id, request_id, ctx, kwargs)

            offered.append(
                Tool.from_schema(
                    call,
                    name=wire_name(tool.name),
                    description=tool.description,
                    json_schema=self._schema(tool),
                    takes_ctx=True,
                )
            )
        return offered

    async def _call_tool(
        self,
        tool: HearthTool,
        session_id: str,
        request_id: str,
        ctx: RunContext[None],
        args: dict[str, Any],
    ) -> Any:
        call_id = ctx.tool_call_id or f"call-{uuid.uuid4()}"
        base = {"requestId": request_id, "toolCallId": call_id, "toolName": tool.name}
        session = await self.repo.get(session_id)
        if session is None:
            return "The session was deleted; stop."
        if self.policy(tool, session) == "ask":
            answer = await self._ask(tool, session, request_id, call_id, args)
            if answer != "approved":
                why = "no answer in time" if answer == "expired" else "denied by the person"
                self._publish("tool.error", {**base, "error": why, "denied": True})
                return (
                    f"The person did not approve this call to {tool.name} ({why}); it did not "
                    "run. Do not retry it unless they ask."
                )
        self._publish("tool.call", {**base, "args": args})
        context = ToolContext(
            workspace=self.workspace,
            bus=self.bus,
            idempotency_key=f"{request_id}:{call_id}",
            source=f"chat:{session.session_key}",
        )
        try:
            result = await self.tools.call(tool.name, args, context)
        except ToolError as exc:
            self._publish("tool.error", {**base, "error": str(exc)})
            return f"The tool failed: {exc}"
        safe = json.loads(json.dumps(result, default=str))
        self._publish("tool.result", {**base, "result": safe})
        return safe

    async def _ask(
        self,
        tool: HearthTool,
        session: SessionRecord,
        request_id: str,
        call_id: str,
        args: dict[str, Any],
    ) -> str:
        """'approved', 'denied' or 'expired'."""
        now = _now()
        expires = now + self.config.approval_timeout
        approval = ApprovalRecord(
            id=str(uuid.uuid4()),
            kind="tool",
            status="pending",
            execution_id=None,
            step_id=None,
            visit_seq=None,
            session_id=session.id,
            tool_call_id=call_id,
            tool_name=tool.name,
            title=f"Run {tool.name}?",
            args=json.loads(json.dumps(args, default=str)),
            risk=tool.risk.value,
            requested_at=now,
            expires_at=expires,
            resolved_at=None,
            resolved_by=None,
            comment=None,
        )
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters[(session.id, call_id)] = waiter
        try:
            async with self.db.begin() as conn:
                await self.approvals.insert(conn, approval)
            self._publish(
                "tool.approval.request",
                {
                    "requestId": request_id,
                    "toolCallId": call_id,
                    "toolName": tool.name,
                    "args": approval.args,
                    "risk": tool.risk.value,
                    "sessionId": session.id,
                    "expiresAt": expires.isoformat(),
                },
            )
            try:
                approved = await asyncio.wait_for(
                    asyncio.shield(waiter), self.config.approval_timeout.total_seconds()
                )
                return "approved" if approved else "denied"
            except TimeoutError:
                async with self.db.begin() as conn:
                    expired = await self.approvals.resolve(
                        conn,
                        approval.id,
                        "expired",
                        by=None,
                        comment="no answer in time",
                        now=_now(),
                    )
                    if not expired:  # answered at the last moment
                        current = await self.approvals.get(conn, approval.id)
                        return current.status if current is not None else "expired"
                return "expired"
            except asyncio.CancelledError:
                async with self.db.begin() as conn:
                    await self.approvals.resolve(
                        conn,
                        approval.id,
                        "cancelled",
                        by=None,
                        comment="stream cancelled",
                        now=_now(),
                    )
                raise
        finally:
            self._waiters.pop((session.id, call_id), None)

    async def respond(
        self,
        tool_call_id: str,
        approved: bool,
        *,
        session_approve: bool = False,
        by: str | None = None,
        session_id: str | None = None,
    ) -> ApprovalRecord:
        """The first answer from any client wins; later ones get NoPendingToolApprovalError.

        Calls are keyed by session and call: a provider's `tool_call_id` is only unique within
        its conversation (local servers reuse `call_0`), so when two sessions wait on the same
        id, the answer must name the session.
        """
        now = _now()
        async with self.db.begin() as conn:
            pending = [
                a
                for a in await self.approvals.pending(conn, kinds=["tool"])
                if a.tool_call_id == tool_call_id and session_id in (None, a.session_id)
            ]
            if len(pending) > 1:
                raise NoPendingToolApprovalError(
                    f"tool call {tool_call_id!r} is waiting in {len(pending)} sessions; "
                    "answer with sessionId to say which"
                )
            if not pending or not await self.approvals.resolve(
                conn,
                pending[0].id,
                "approved" if approved else "denied",
                by=by,
                comment=None,
                now=now,
            ):
                raise NoPendingToolApprovalError(
                    f"no tool call {tool_call_id!r} is waiting for approval (already answered, "
                    "timed out, or never asked); `hearth approvals` lists what is waiting"
                )
        approval = replace(pending[0], status="approved" if approved else "denied")
        if approved and session_approve and approval.session_id and approval.tool_name:
            await self.repo.approve_tool(approval.session_id, approval.tool_name)
        self._publish(
            RESOLVED_TOPIC,
            {"toolCallId": tool_call_id, "approved": approved, "sessionId": approval.session_id},
        )
        publish_resolved(self.bus, approval, approval.status)
        waiter = self._waiters.get((approval.session_id or "", tool_call_id))
        if waiter is not None and not waiter.done():
            waiter.set_result(approved)
        return approval


def _is_model_failure(exc: BaseException) -> bool:
    """A failure of the model or its server (logged briefly), not a bug of ours (traceback)."""
    from pydantic_ai.exceptions import AgentRunError

    return isinstance(exc, AgentRunError | OSError | TimeoutError)
