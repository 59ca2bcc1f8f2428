"""Chat: sessions, their message history and usage per request.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_key", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("agent_id", sa.String(64)),
        sa.Column("approved_tools", sa.JSON, nullable=False),
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("active_request_id", sa.String(36)),
        sa.Column("active_since", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
        sa.UniqueConstraint("session_key", name="uq_chat_sessions_session_key"),
    )
    op.create_table(
        "chat_messages",
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("message", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_chat_messages")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_messages_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "chat_usage",
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("total_tokens", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_chat_usage")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_usage_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_chat_usage_session_id"), "chat_usage", ["session_id"])


def downgrade() -> None:
    op.drop_table("chat_usage")
    op.drop_table("chat_messages")
    op.drop_table("chat_sessions")
