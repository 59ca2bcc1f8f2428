"""Schedules and their run history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("workflow_id", sa.String(128)),
        sa.Column("input", sa.JSON),
        sa.Column("cron_expression", sa.String(200)),
        sa.Column("every", sa.String(50)),
        sa.Column("every_s", sa.Float),
        sa.Column("at", TS),
        sa.Column("anchor_at", TS, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("active_hours", sa.JSON),
        sa.Column("max_runs", sa.Integer),
        sa.Column("run_count", sa.Integer, nullable=False),
        sa.Column("overlap", sa.String(8), nullable=False),
        sa.Column("misfire", sa.String(16), nullable=False),
        sa.Column("misfire_grace_s", sa.Float, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("next_run", TS),
        sa.Column("last_execution_id", sa.String(36)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index(op.f("ix_schedules_next_run"), "schedules", ["next_run"])
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("scheduled_for", TS, nullable=False),
        sa.Column("fired_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("execution_id", sa.String(36)),
        sa.Column("missed_count", sa.Integer),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_runs_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_runs_tick"),
    )
    op.create_index(op.f("ix_schedule_runs_execution_id"), "schedule_runs", ["execution_id"])


def downgrade() -> None:
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
