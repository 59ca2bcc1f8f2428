"""chat.*, tool.approval.response, session.* and usage.query."""

from __future__ import annotations

from hearth.chat.history import render_stored
from hearth.gateway.dispatch import HandlerContext, handles
from hearth.pages import decode_cursor, split_page
from hearth.protocol import ErrorCode, ProtocolError
from hearth.protocol.messages.chat import (
    ChatCancel,
    ChatCancelled,
    ChatSend,
    ChatStreamStart,
    HistoryEntry,
    ModelUsage,
    SessionDelete,
    SessionDeleted,
    SessionHistory,
    SessionHistoryResult,
    SessionInfo,
    SessionList,
    SessionListResult,
    ToolApprovalResolved,
    ToolApprovalResponse,
    Usage,
    UsageQuery,
    UsageReport,
)


def _who(ctx: HandlerContext) -> str:
    client = ctx.connection.client
    return f"{client.name} ({ctx.connection.id})" if client else ctx.connection.id


@handles(ChatSend)
async def send(message: ChatSend, ctx: HandlerContext) -> ChatStreamStart:
    started = await ctx.state.chat.send(
        message.content,
        session_id=message.session_id,
        model=message.model,
        agent_id=message.agent_id,
    )
    return ChatStreamStart(
        id=message.id,
        request_id=started.request_id,
        session_id=started.session.id,
        model=started.model,
    )


@handles(ChatCancel)
async def cancel(message: ChatCancel, ctx: HandlerContext) -> ChatCancelled:
    cancelled = await ctx.state.chat.cancel(message.request_id)
    return ChatCancelled(id=message.id, request_id=message.request_id, cancelled=cancelled)


@handles(ToolApprovalResponse)
async def approval(message: ToolApprovalResponse, ctx: HandlerContext) -> ToolApprovalResolved:
    await ctx.state.chat.respond(
        message.tool_call_id,
        message.approved,
        session_approve=bool(message.session_approve),
        by=_who(ctx),
        session_id=message.session_id,
    )
    return ToolApprovalResolved(
        id=message.id, tool_call_id=message.tool_call_id, approved=message.approved
    )


@handles(SessionList)
async def list_sessions(message: SessionList, ctx: HandlerContext) -> SessionListResult:
    rows, total = await ctx.state.chat.repo.page(message.limit + 1, decode_cursor(message.cursor))
    sessions, next_cursor = split_page(rows, message.limit, lambda s: (s.updated_at, s.id))
    return SessionListResult(
        id=message.id,
        next_cursor=next_cursor,
        total=total,
        sessions=[
            SessionInfo(
                session_id=s.id,
                session_key=s.session_key,
                title=s.title,
                model=s.model,
                created_at=s.created_at,
                updated_at=s.updated_at,
                message_count=s.message_count,
            )
            for s in sessions
        ],
    )


async def _session_id(ctx: HandlerContext, session_id: str) -> str:
    record = await ctx.state.chat.repo.get(session_id)
    if record is None:
        raise ProtocolError(ErrorCode.SESSION_NOT_FOUND, f"no session {session_id!r}")
    return record.id


@handles(SessionHistory)
async def history(message: SessionHistory, ctx: HandlerContext) -> SessionHistoryResult:
    session_id = await _session_id(ctx, message.session_id)
    stored = await ctx.state.chat.repo.messages(session_id)
    entries = render_stored(stored)
    if message.limit is not None:
        entries = entries[-message.limit :]
    return SessionHistoryResult(
        id=message.id,
        session_id=session_id,
        messages=[HistoryEntry.model_validate(e) for e in entries],
    )


@handles(SessionDelete)
async def delete(message: SessionDelete, ctx: HandlerContext) -> SessionDeleted:
    session_id = await _session_id(ctx, message.session_id)
    record = await ctx.state.chat.repo.get(session_id)
    if record is not None and record.active_request_id is not None:
        raise ProtocolError(
            ErrorCode.SESSION_BUSY,
            "the session is answering; cancel the request (chat.cancel) or wait for its end",
        )
    await ctx.state.chat.repo.delete(session_id)
    return SessionDeleted(id=message.id, session_id=session_id)


@handles(UsageQuery)
async def usage(message: UsageQuery, ctx: HandlerContext) -> UsageReport:
    session_id = (
        await _session_id(ctx, message.session_id) if message.session_id is not None else None
    )
    rows = await ctx.state.chat.repo.usage(session_id)
    models = [
        ModelUsage(
            model=row["model"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            total_tokens=row["total_tokens"],
            requests=row["chat_requests"],
        )
        for row in rows
    ]
    total = Usage(
        input_tokens=sum(m.input_tokens for m in models),
        output_tokens=sum(m.output_tokens for m in models),
        total_tokens=sum(m.total_tokens for m in models),
    )
    return UsageReport(id=message.id, session_id=session_id, models=models, total=total)
