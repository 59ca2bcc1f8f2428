"""Telegram channel: bot state and poller lease, inbox, outbound ledger, users, pairing codes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "telegram_bots",
        sa.Column("bot_id", sa.String(32), nullable=False),
        sa.Column("update_offset", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("bot_id", name="pk_telegram_bots"),
    )
    op.create_table(
        "telegram_inbox",
        sa.Column("bot_id", sa.String(32), nullable=False),
        sa.Column("update_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("handled_at", TS),
        sa.PrimaryKeyConstraint("bot_id", "update_id", name="pk_telegram_inbox"),
    )
    op.create_index("ix_telegram_inbox_status", "telegram_inbox", ["bot_id", "status"])
    op.create_table(
        "telegram_outbox",
        sa.Column("bot_id", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("cause", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.BigInteger),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("entities", sa.JSON),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("bot_id", "chat_id", "cause", name="pk_telegram_outbox"),
    )
    op.create_index("ix_telegram_outbox_kind", "telegram_outbox", ["bot_id", "kind", "status"])
    op.create_table(
        "telegram_users",
        sa.Column("user_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("session_id", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_telegram_users"),
    )
    op.create_table(
        "telegram_pairings",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.PrimaryKeyConstraint("code", name="pk_telegram_pairings"),
    )
    op.create_index("ix_telegram_pairings_user_id", "telegram_pairings", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("telegram_pairings")
    op.drop_table("telegram_users")
    op.drop_table("telegram_outbox")
    op.drop_table("telegram_inbox")
    op.drop_table("telegram_bots")
