"""Notifications: every `notify` is stored, so it can be read after the fact.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("execution_id", sa.String(36)),
        sa.Column("step_id", sa.String(64)),
        sa.Column("dedupe_key", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_notifications_created_at"), "notifications", ["created_at"])
    op.create_index(op.f("ix_notifications_execution_id"), "notifications", ["execution_id"])


def downgrade() -> None:
    op.drop_table("notifications")
