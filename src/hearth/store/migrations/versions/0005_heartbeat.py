"""Heartbeat: its runs and the alerts it raised.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "heartbeat_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("schedule_id", sa.String(36)),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("heartbeat_path", sa.Text, nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("open_items", sa.Integer, nullable=False),
        sa.Column("deferred", sa.Integer, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("alerted", sa.Boolean, nullable=False),
        sa.Column("alert_id", sa.String(36)),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("scheduled_for", TS),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_runs")),
    )
    op.create_index(op.f("ix_heartbeat_runs_status"), "heartbeat_runs", ["status"])
    op.create_index(op.f("ix_heartbeat_runs_started_at"), "heartbeat_runs", ["started_at"])
    op.create_table(
        "heartbeat_alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_alerts")),
    )
    op.create_index(op.f("ix_heartbeat_alerts_run_id"), "heartbeat_alerts", ["run_id"])
    op.create_index(op.f("ix_heartbeat_alerts_signature"), "heartbeat_alerts", ["signature"])
    op.create_index(op.f("ix_heartbeat_alerts_created_at"), "heartbeat_alerts", ["created_at"])


def downgrade() -> None:
    op.drop_table("heartbeat_alerts")
    op.drop_table("heartbeat_runs")
