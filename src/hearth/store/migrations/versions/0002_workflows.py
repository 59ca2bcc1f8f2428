"""Workflows: pinned definitions, executions, the step journal and approvals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("workflow_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "content_hash", name=op.f("pk_workflows")),
    )
    op.create_table(
        "workflow_executions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workflow_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("triggered_by", sa.String(16), nullable=False),
        sa.Column("input", sa.JSON, nullable=False),
        sa.Column("current_step_id", sa.String(64)),
        sa.Column("visit_seq", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("step_count", sa.Integer, nullable=False),
        sa.Column("waiting_for", sa.String(16)),
        sa.Column("wake_at", TS),
        sa.Column("error", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("scheduled_for", TS),
        sa.Column("owner_node", sa.String(64)),
        sa.Column("lease_expires_at", TS),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_executions")),
        sa.ForeignKeyConstraint(
            ["workflow_id", "content_hash"],
            ["workflows.workflow_id", "workflows.content_hash"],
            name=op.f("fk_workflow_executions_workflow_id_workflows"),
        ),
    )
    op.create_index(
        op.f("ix_workflow_executions_workflow_id"), "workflow_executions", ["workflow_id"]
    )
    op.create_index(op.f("ix_workflow_executions_status"), "workflow_executions", ["status"])
    op.create_index(op.f("ix_workflow_executions_wake_at"), "workflow_executions", ["wake_at"])
    op.create_table(
        "step_runs",
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "seq", name=op.f("pk_step_runs")),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_executions.id"],
            name=op.f("fk_step_runs_execution_id_workflow_executions"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("execution_id", sa.String(36)),
        sa.Column("step_id", sa.String(64)),
        sa.Column("visit_seq", sa.Integer),
        sa.Column("session_id", sa.String(64)),
        sa.Column("tool_call_id", sa.String(128)),
        sa.Column("tool_name", sa.String(128)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("risk", sa.String(16)),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("comment", sa.Text),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint("execution_id", "visit_seq", name="uq_approvals_execution_visit"),
    )
    op.create_index(op.f("ix_approvals_status"), "approvals", ["status"])
    op.create_index(op.f("ix_approvals_execution_id"), "approvals", ["execution_id"])


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("step_runs")
    op.drop_table("workflow_executions")
    op.drop_table("workflows")
