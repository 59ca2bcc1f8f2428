"""Approvals on the phone: every pending approval is shown to the allowed users with buttons.

The approvals table is the truth, not the events: a sweep (woken by approval-related events,
and every few seconds for answers from other nodes and expiries) sends a prompt for each pending
approval that a user has not been shown (`approval:<id>` in the ledger, so never twice), and
edits every prompt whose approval was settled — by a button here or by any other client — to
say who answered, without buttons. Button presses go through the same services as any client,
so the first answer wins everywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from telegram.error import TelegramError

from hearth.channels.telegram.api import Buttons, TelegramApi
from hearth.channels.telegram.format import RichText, clip
from hearth.chat.errors import NoPendingToolApprovalError
from hearth.chat.service import ChatService
from hearth.store import Database
from hearth.store.approvals import ApprovalRepository
from hearth.store.records import ApprovalRecord
from hearth.store.telegram import SENT, TelegramRepository
from hearth.workflows.engine import WorkflowEngine
from hearth.workflows.errors import NoPendingApprovalError

log = logging.getLogger("hearth.channels.telegram")

APPROVAL = "approval"
CALLBACK_PREFIX = "ap"
ACTIONS = {"a": "approve", "d": "deny", "s": "always"}
OUTCOME = {
    "approved": "✅ Approved",
    "denied": "❌ Denied",
    "expired": "⌛ Expired",
    "cancelled": "✖️ Cancelled",
}


def _now() -> datetime:
    return datetime.now(UTC)


def callback_data(approval_id: str, action: str) -> str:
    """`ap:<approval id>:<a|d|s>`: 41 bytes for a UUID, within Telegram's 64."""
    data = f"{CALLBACK_PREFIX}:{approval_id}:{action}"
    if len(data.encode()) > 64:
        raise ValueError(f"callback data over 64 bytes: {data!r}")
    return data


def parse_callback(data: str) -> tuple[str, str] | None:
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != CALLBACK_PREFIX or parts[2] not in ACTIONS:
        return None
    return parts[1], parts[2]


def prompt(approval: ApprovalRecord) -> tuple[RichText, Buttons]:
    rich = RichText()
    kind = {"workflow": "Workflow approval", "tool": "Tool approval"}.get(
        approval.kind, f"Approval ({approval.kind})"
    )
    rich.add(f"🔐 {kind}\n", "bold")
    rich.add(clip(approval.title, 500) + "\n")
    if approval.tool_name:
        rich.add("Tool: ").add(approval.tool_name, "code").add("\n")
    if approval.risk:
        rich.add(f"Risk: {approval.risk}\n")
    if approval.args not in (None, {}, []):
        rich.add("\n").add(
            clip(json.dumps(approval.args, indent=2, ensure_ascii=False, default=str), 2500),
            "pre",
            language="json",
        )
    buttons: Buttons = [
        [("Approve", callback_data(approval.id, "a")), ("Deny", callback_data(approval.id, "d"))]
    ]
    if approval.kind == "tool":
        buttons.append([("Always (this chat session)", callback_data(approval.id, "s"))])
    return rich, buttons


def outcome(approval: ApprovalRecord) -> str:
    line = OUTCOME.get(approval.status, approval.status)
    if approval.resolved_by:
        line += f" by {approval.resolved_by}"
    if approval.comment and approval.status in ("denied", "expired", "cancelled"):
        line += f" ({clip(approval.comment, 200)})"
    return line


class ApprovalRelay:
    def __init__(
        self,
        *,
        api: TelegramApi,
        repo: TelegramRepository,
        bot_id: str,
        db: Database,
        chat: ChatService,
        workflows: WorkflowEngine,
        recipients: Callable[[], Awaitable[list[int]]],
    ) -> None:
        self.api = api
        self.repo = repo
        self.bot_id = bot_id
        self.db = db
        self.chat = chat
        self.workflows = workflows
        self.recipients = recipients
        self.approvals = ApprovalRepository()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, interval_s: float, active: Callable[[], bool]) -> None:
        """Sweep when woken, and at least every `interval_s` while this node polls."""
        while True:
            try:
                async with asyncio.timeout(interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if not active():
                continue
            try:
                await self.sweep()
            except (TelegramError, OSError) as exc:
                log.warning("could not update approval prompts in Telegram: %s", exc)
            except Exception:
                log.exception("approval sweep failed")

    async def pending(self) -> list[ApprovalRecord]:
        async with self.db.connect() as conn:
            return await self.approvals.pending(conn)

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        async with self.db.connect() as conn:
            return await self.approvals.get(conn, approval_id)

    async def sweep(self) -> None:
        async with self._lock:
            pending = await self.pending()
            if pending:
                users = await self.recipients()
                for approval in pending:
                    for chat_id in users:
                        await self._prompt(chat_id, approval)
            await self._settle()

    async def _prompt(self, chat_id: int, approval: ApprovalRecord) -> None:
        cause = f"{APPROVAL}:{approval.id}"
        rich, buttons = prompt(approval)
        claimed = await self.repo.claim(
            self.bot_id, chat_id, cause, kind=APPROVAL, ref=approval.id, text=rich.text, now=_now()
        )
        if claimed is not None:
            return
        try:
            shown = await self.api.send(chat_id, rich.text, rich.entities, buttons)
        except BaseException:
            await self.repo.release(self.bot_id, chat_id, cause)
            raise
        await self.repo.record(
            self.bot_id,
            chat_id,
            cause,
            message_id=shown.message_id,
            text=shown.text,
            entities=shown.entities,
            now=_now(),
        )

    async def _settle(self) -> None:
        """Edit prompts whose approval is no longer pending; remove their buttons."""
        for row in await self.repo.by_kind(self.bot_id, APPROVAL, SENT):
            if row.ref is None or row.message_id is None:
                continue
            approval = await self.get(row.ref)
            if approval is not None and approval.status == "pending":
                continue
            line = outcome(approval) if approval is not None else "This approval is gone."
            text = f"{row.text}\n\n{line}"
            await self.api.edit(row.chat_id, row.message_id, text, row.entities)
            if await self.repo.close(self.bot_id, row.chat_id, row.cause, _now()):
                await self.repo.record(
                    self.bot_id,
                    row.chat_id,
                    row.cause,
                    message_id=row.message_id,
                    text=text,
                    entities=row.entities,
                    now=_now(),
                    status="closed",
                )

    async def answer(self, data: str, user_id: int, name: str) -> str:
        """Act on a button press; returns what the popup says."""
        parsed = parse_callback(data)
        if parsed is None:
            return "This button is not one of mine."
        approval_id, action = parsed
        approval = await self.get(approval_id)
        if approval is None:
            return "This approval no longer exists."
        if approval.status != "pending":
            self.wake()
            return f"Already answered: {outcome(approval)}."
        approved = action in ("a", "s")
        by = f"telegram:{name} ({user_id})"
        try:
            if approval.tool_call_id:
                await self.chat.respond(
                    approval.tool_call_id, approved, session_approve=action == "s", by=by
                )
            elif approval.execution_id and approval.step_id:
                await self.workflows.approve(
                    approval.execution_id, approval.step_id, approved, by=by
                )
            else:
                return "This approval cannot be answered from Telegram; use `hearth approvals`."
        except (NoPendingToolApprovalError, NoPendingApprovalError):
            self.wake()
            latest = await self.get(approval_id)
            return f"Already answered: {outcome(latest)}." if latest else "Already answered."
        self.wake()
        if action == "s":
            return "Approved for the rest of this chat session."
        return "Approved." if approved else "Denied."
