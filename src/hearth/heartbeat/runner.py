"""One heartbeat run: read the checklist, ask the model once, alert only when action is needed.

The rules a run follows, and why:

- **One model call for every open item.** Checking each item with its own call repeats the
  instructions, the context and the output schema for every item; one call with all of them
  costs a fraction of the tokens (see `bench/heartbeat_cost.py`).
- **Never silent on failure.** A model error, a timeout or an answer that does not fit the
  schema is recorded as an `error` run with the reason, never as "all clear". After
  `failing_after` errors in a row (skipped runs neither break nor extend the streak) one alert
  says the heartbeat itself is failing; no more until a run succeeds.
- **Never spam.** The same set of alerting items (normalised) is sent at most once per
  `dedupe_window`; a repeat is recorded as `suppressed`.
- **Chats first.** While a chat is streaming on this node the run waits (up to `defer_times` times
  `defer_s`, woken early when the chat ends), then runs anyway: an alert must not wait forever.
- **Read-only tools.** The model may read workspace files and make GET/HEAD requests; nothing it
  does can change anything, so no call needs a person's approval.

Runs on one node are serialised by a lock, so a manual run and a scheduled one never ask the
model at the same time or race each other's dedupe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from hearth.chat.service import wire_name
from hearth.events import DomainEvent, EventBus
from hearth.heartbeat.checklist import Checklist, ChecklistError, read_checklist
from hearth.mcp.tool import McpTool
from hearth.metrics import Metrics
from hearth.models import (
    ModelCallError,
    ModelNotConfiguredError,
    ResolvedModel,
    one_line,
    run_model,
)
from hearth.store.heartbeat import HeartbeatRepository
from hearth.store.records import HeartbeatAlertRecord, HeartbeatRunRecord
from hearth.tools import ToolContext, ToolError, ToolRegistry
from hearth.tools.policy import decide

if TYPE_CHECKING:
    from pydantic_ai import Tool
    from pydantic_ai.usage import RunUsage

# pydantic-ai is imported inside the methods that run the model: the gateway imports this module
# at start, and that should not cost seconds (see hearth.models).

log = logging.getLogger("hearth.heartbeat")

ALERT_TOPIC = "heartbeat.alert"
INTERRUPTED = "interrupted: the gateway stopped during the run"
CHAT_END_TOPIC = "chat.stream.end"
#: The tools a heartbeat may use. Both only read (HTTP is limited to GET and HEAD).
READ_ONLY_TOOLS = ("file.read", "http.request")
READ_METHODS = ("GET", "HEAD")

INSTRUCTIONS = (
    "You are the heartbeat of Hearth, the user's personal assistant. The user keeps a checklist "
    "of things to keep an eye on. For every open item, find out whether the user needs to do "
    "something now; the tools can read workspace files and fetch URLs. Answer with one entry per "
    "item, in the order given: `description` is the item's text exactly as given, "
    "`actionNeeded` is true only when the user must act, `details` says briefly what you found."
)

OUTPUT_SCHEMA: dict[str, Any] = {
    "title": "heartbeat_report",
    "type": "object",
    "properties": {
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "actionNeeded": {"type": "boolean"},
                    "details": {"type": "string"},
                },
                "required": ["description", "actionNeeded"],
            },
        }
    },
    "required": ["checks"],
}


@dataclass(frozen=True)
class HeartbeatConfig:
    defer_s: float = 60.0
    defer_times: int = 2
    timeout_s: float = 120.0
    dedupe_window: timedelta = timedelta(hours=6)
    failing_after: int = 3
    #: `[heartbeat] allow_outside`: the checklist may live outside the data directory.
    allow_outside: bool = False
    #: `[tools] policy`: an MCP tool is offered only when it would run without asking.
    tool_policy: dict[str, str] = field(default_factory=dict)

    @property
    def longest_run(self) -> timedelta:
        """How long a live run can possibly take; a `running` row older than this is dead."""
        return timedelta(seconds=self.defer_s * self.defer_times + self.timeout_s + 60)


class _Check(BaseModel):
    """One entry of the model's answer. Extra keys are ignored: models like to add some."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    description: str = Field(min_length=1)
    action_needed: bool
    details: str | None = None


class _Report(BaseModel):
    model_config = ConfigDict(extra="ignore")

    checks: list[_Check]


@dataclass(frozen=True)
class Check:
    description: str
    action_needed: bool
    details: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"description": self.description, "actionNeeded": self.action_needed}
        if self.details:
            data["details"] = self.details
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Check:
        return cls(
            str(data.get("description", "")),
            bool(data.get("actionNeeded")),
            data.get("details"),
        )


@dataclass(frozen=True)
class RunOutcome:
    """What a run found. `status` is ok, skipped or error; `reason` says why when not plain ok."""

    run_id: str
    status: str
    reason: str | None = None
    checks: list[Check] = field(default_factory=list)
    alerted: bool = False
    alert_id: str | None = None
    deferred: int = 0
    checklist: Checklist | None = None


class _RunFailed(Exception):
    """Ends a run as `error`; the message is the reason recorded and shown (one line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(one_line(reason))


def normalise(text: str) -> str:
    """Lowercase with collapsed whitespace: how two wordings of one item are recognised."""
    return " ".join(text.lower().split())


def signature(checks: list[Check]) -> str:
    """The identity of an alert: the normalised, sorted set of its alerting items."""
    items = sorted({normalise(c.description) for c in checks if c.action_needed})
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def build_prompt(checklist: Checklist, now: datetime, tz: ZoneInfo) -> str:
    """The user message: the time (items often depend on it), the context, the open items."""
    local = now.astimezone(tz)
    parts = [f"Now: {local:%A %Y-%m-%d %H:%M} ({tz.key})"]
    if checklist.context:
        parts.append(f"Context from the checklist:\n{checklist.context}")
    items = "\n".join(f"{n}. {item}" for n, item in enumerate(checklist.open_items, start=1))
    parts.append(f"Open items:\n{items}")
    return "\n\n".join(parts)


def read_only_http_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`http.request`'s argument schema without bodies and with GET/HEAD only."""
    properties = dict(schema.get("properties", {}))
    for key in ("json", "body"):
        properties.pop(key, None)
    method = dict(properties.get("method", {}))
    method.update(enum=list(READ_METHODS), default="GET", type="string")
    method.pop("$ref", None)
    properties["method"] = method
    result = {k: v for k, v in schema.items() if k not in ("properties", "$defs")}
    result["properties"] = properties
    result["required"] = [r for r in schema.get("required", []) if r in properties]
    return result


class HeartbeatRunner:
    """Performs runs whose row the caller already inserted (`status = running`)."""

    #: Where run outcomes and model use are recorded; the composition root sets it.
    metrics: Metrics | None = None

    def __init__(
        self,
        *,
        repo: HeartbeatRepository,
        bus: EventBus,
        models: Callable[[str | None], ResolvedModel],
        tools: ToolRegistry,
        workspace: Path,
        chat_busy: Callable[[], bool],
        config: HeartbeatConfig,
    ) -> None:
        self.repo = repo
        self.bus = bus
        self.models = models
        self.tools = tools
        self.workspace = workspace
        self.chat_busy = chat_busy
        self.config = config
        self._lock = asyncio.Lock()

    def new_run(
        self,
        path: Path,
        *,
        trigger: str,
        schedule_id: str | None = None,
        scheduled_for: datetime | None = None,
    ) -> HeartbeatRunRecord:
        """The row that marks a run as started (insert it, then call `run`)."""
        return HeartbeatRunRecord(
            id=str(uuid.uuid4()),
            schedule_id=schedule_id,
            trigger=trigger,
            status="running",
            reason=None,
            heartbeat_path=str(path),
            model=None,
            open_items=0,
            deferred=0,
            checks=[],
            alerted=False,
            alert_id=None,
            input_tokens=0,
            output_tokens=0,
            scheduled_for=scheduled_for,
            started_at=_now(),
            finished_at=None,
        )

    async def run(self, run_id: str, path: Path, timezone: str) -> RunOutcome:
        """Perform the run and record its outcome; never raises for a failed check."""
        from pydantic_ai.usage import RunUsage

        async with self._lock:
            started = time.monotonic()
            usage = RunUsage()
            model_name: str | None = None
            checklist: Checklist | None = None
            deferred = 0
            try:
                checklist = await asyncio.to_thread(read_checklist, path)
                if not checklist.open_items:
                    outcome = RunOutcome(run_id, "skipped", "empty", checklist=checklist)
                else:
                    deferred = await self._defer()
                    try:
                        resolved = self.models(checklist.model)
                    except ModelNotConfiguredError as exc:
                        raise _RunFailed(str(exc)) from None
                    model_name = resolved.name
                    checks = await self._ask(run_id, resolved, checklist, timezone, usage)
                    outcome = RunOutcome(
                        run_id, "ok", _coverage(checks, checklist), checks, checklist=checklist
                    )
            except ChecklistError as exc:
                outcome = RunOutcome(run_id, "error", str(exc))
            except _RunFailed as exc:
                outcome = RunOutcome(run_id, "error", str(exc), checklist=checklist)
            except Exception as exc:
                # A bug must still end as a recorded error: silence would read as "all clear".
                log.exception("heartbeat run %s failed unexpectedly", run_id)
                reason = one_line(f"unexpected failure: {type(exc).__name__}: {exc}")
                outcome = RunOutcome(run_id, "error", reason, checklist=checklist)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self._finish(
                            RunOutcome(run_id, "error", INTERRUPTED),
                            model_name,
                            usage,
                            deferred,
                            count_failure=False,
                        )
                    )
                raise
            try:
                finished = await self._finish(
                    replace(outcome, deferred=deferred), model_name, usage, deferred
                )
                self._observe(finished, model_name, usage, time.monotonic() - started)
                return finished
            except _Abandoned:
                log.warning("heartbeat run %s was closed as interrupted while it ran", run_id)
                return RunOutcome(run_id, "error", INTERRUPTED, deferred=deferred)

    def _observe(
        self, outcome: RunOutcome, model_name: str | None, usage: Any, seconds: float
    ) -> None:
        if self.metrics is None:
            return
        self.metrics.heartbeat_run(outcome.status, outcome.alerted)
        if model_name is not None:
            provider, _, model = model_name.partition(":")
            self.metrics.model_request(
                provider,
                model or provider,
                "error" if outcome.status == "error" else "ok",
                seconds,
                input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
                output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            )

    # -- steps ------------------------------------------------------------------------------

    async def _defer(self) -> int:
        """Wait while a chat streams on this node; how many times the run was put off."""
        if not self.chat_busy() or self.config.defer_times == 0:
            return 0
        ended = self.bus.subscribe(CHAT_END_TOPIC)
        deferred = 0
        try:
            while self.chat_busy() and deferred < self.config.defer_times:
                deferred += 1
                log.info("a chat is streaming; heartbeat deferred (%d)", deferred)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.defer_s):
                        async for _event in ended:
                            if not self.chat_busy():
                                break
        finally:
            ended.close()
        return deferred

    async def _ask(
        self,
        run_id: str,
        resolved: ResolvedModel,
        checklist: Checklist,
        timezone: str,
        usage: RunUsage,
    ) -> list[Check]:
        prompt = build_prompt(checklist, _now(), ZoneInfo(timezone))
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await self.tools.prepare()  # MCP servers start on first use
                output = await run_model(
                    resolved,
                    prompt,
                    output_schema=OUTPUT_SCHEMA,
                    instructions=INSTRUCTIONS,
                    tools=self.read_only_tools(run_id),
                    usage=usage,
                )
        except TimeoutError:
            raise _RunFailed(
                f"{resolved.name} did not answer within {self.config.timeout_s:g} s"
            ) from None
        except ModelCallError as exc:
            raise _RunFailed(str(exc)) from None
        try:
            report = _Report.model_validate(output)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "answer"
            raise _RunFailed(
                f"{resolved.name} answered with something that does not parse: "
                f"{where}: {first['msg']}"
            ) from None
        return _match(report, checklist)

    def read_only_tools(self, run_id: str) -> list[Tool[None]]:
        """`file.read`, `http.request` (GET/HEAD only) and the MCP tools their servers mark
        read-only (when `[mcp] trust_read_only_hints` allows it and the policy lets them run
        unasked: nobody is there to ask) as pydantic-ai tools for one run."""
        from pydantic_ai import Tool

        offered: list[Tool[None]] = []
        calls = itertools.count(1)
        mcp_names = [
            tool.name
            for tool in self.tools
            if isinstance(tool, McpTool)
            and tool.read_only
            and decide(tool, self.config.tool_policy) == "auto"
        ]
        for name in [*READ_ONLY_TOOLS, *mcp_names]:
            if name not in self.tools:
                continue
            tool = self.tools.get(name)
            schema = tool.json_schema()
            description = tool.description
            if name == "http.request":
                schema = read_only_http_schema(schema)
                description += " Only GET and HEAD are allowed here."

            async def call(_name: str = name, **kwargs: Any) -> Any:
                return await self._call_tool(_name, kwargs, f"heartbeat:{run_id}:{next(calls)}")

            offered.append(
                Tool.from_schema(
                    call, name=wire_name(name), description=description, json_schema=schema
                )
            )
        return offered

    async def _call_tool(self, name: str, args: dict[str, Any], key: str) -> Any:
        """Run a read-only tool for the model; failures are told to the model, not raised."""
        if name == "http.request":
            method = str(args.get("method") or "GET").upper()
            if method not in READ_METHODS or args.get("json") is not None or args.get("body"):
                return "Refused: the heartbeat may only read (GET or HEAD, no body)."
        context = ToolContext(
            workspace=self.workspace, bus=self.bus, idempotency_key=key, source="heartbeat"
        )
        try:
            result = await self.tools.call(name, args, context)
        except ToolError as exc:
            return f"The tool failed: {exc}"
        return json.loads(json.dumps(result, default=str))

    # -- recording --------------------------------------------------------------------------

    async def _finish(
        self,
        outcome: RunOutcome,
        model: str | None,
        usage: RunUsage,
        deferred: int,
        *,
        count_failure: bool = True,
    ) -> RunOutcome:
        """Record the run, its alert (sent or suppressed) and a failing alert, atomically;
        publish only after the commit, so a client never sees an alert that is not stored."""
        now = _now()
        publish: list[HeartbeatAlertRecord] = []
        async with self.repo.db.begin() as conn:
            alert: HeartbeatAlertRecord | None = None
            alerting = [c for c in outcome.checks if c.action_needed]
            if outcome.status == "ok" and alerting:
                sig = signature(alerting)
                earlier = await self.repo.sent_since(conn, sig, now - self.config.dedupe_window)
                alert = HeartbeatAlertRecord(
                    id=str(uuid.uuid4()),
                    run_id=outcome.run_id,
                    kind="checks",
                    status="suppressed" if earlier else "sent",
                    signature=sig,
                    checks=[c.to_json() for c in alerting],
                    message=None,
                    created_at=now,
                )
                await self.repo.insert_alert(conn, alert)
                if earlier is None:
                    publish.append(alert)
                else:
                    outcome = replace(
                        outcome,
                        reason=_join(
                            outcome.reason,
                            "suppressed: the same alert was sent at "
                            f"{earlier.created_at.isoformat(timespec='seconds')}",
                        ),
                    )
            outcome = replace(outcome, alerted=bool(publish), alert_id=alert.id if alert else None)
            finished = await self.repo.finish_run(
                conn,
                outcome.run_id,
                {
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "model": model,
                    "open_items": len(outcome.checklist.open_items) if outcome.checklist else 0,
                    "deferred": deferred,
                    "checks": [c.to_json() for c in outcome.checks],
                    "alerted": outcome.alerted,
                    "alert_id": outcome.alert_id,
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "finished_at": now,
                },
            )
            if not finished:
                # Someone (recovery on another node) already closed this run as interrupted.
                raise _Abandoned(outcome.run_id)
            if outcome.status == "error" and count_failure:
                failing = await self._failing_alert(conn, outcome, now)
                if failing is not None:
                    publish.append(failing)
        for record in publish:
            self.bus.publish(DomainEvent(ALERT_TOPIC, alert_event(record)))
        return outcome

    async def _failing_alert(
        self, conn: Any, outcome: RunOutcome, now: datetime
    ) -> HeartbeatAlertRecord | None:
        """One alert when the streak of errors reaches `failing_after`, none more until an ok."""
        threshold = self.config.failing_after
        latest = await self.repo.latest_outcomes(conn, threshold)
        if len(latest) < threshold or any(status != "error" for status in latest):
            return None
        if await self.repo.failing_alert_after(conn, await self.repo.last_ok_at(conn)):
            return None
        alert = HeartbeatAlertRecord(
            id=str(uuid.uuid4()),
            run_id=outcome.run_id,
            kind="failing",
            status="sent",
            signature="failing",
            checks=[],
            # One line of at most 300 characters: it is read on a phone (details: the log).
            message=one_line(
                f"The heartbeat itself is failing: its last {threshold} runs ended in an error, "
                f"so your checklist is not being checked. Last error: {outcome.reason}"
            ),
            created_at=now,
        )
        await self.repo.insert_alert(conn, alert)
        log.warning("heartbeat failed %d times in a row: %s", threshold, outcome.reason)
        return alert


class _Abandoned(Exception):
    """The run's row was closed by recovery before the run finished (should be rare)."""


def alert_event(record: HeartbeatAlertRecord) -> dict[str, Any]:
    """The `heartbeat.alert` domain event's data (the protocol event has the same fields)."""
    data: dict[str, Any] = {
        "checks": record.checks,
        "timestamp": record.created_at.isoformat(),
        "alertId": record.id,
        "kind": record.kind,
    }
    if record.message:
        data["message"] = record.message
    return data


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


def _match(report: _Report, checklist: Checklist) -> list[Check]:
    """The model's entries, with each description mapped back to the item's own text where
    it recognisably is one, and entries for done items dropped (they never alert)."""
    open_items = {normalise(item): item for item in checklist.open_items}
    done = {normalise(item) for item in checklist.done_items} - set(open_items)
    checks: list[Check] = []
    seen: set[str] = set()
    for entry in report.checks:
        key = normalise(entry.description)
        if key in done or key in seen:
            continue
        seen.add(key)
        details = entry.details.strip() if entry.details else None
        checks.append(
            Check(open_items.get(key, entry.description.strip()), entry.action_needed, details)
        )
    return checks


def _coverage(checks: list[Check], checklist: Checklist) -> str | None:
    """A note when the model answered for fewer items than were open (None when complete)."""
    wanted = len(checklist.open_items)
    if not checks:
        raise _RunFailed(f"the model answered for none of the {wanted} open items")
    if len(checks) < wanted:
        return f"the model answered for {len(checks)} of {wanted} open items"
    return None
