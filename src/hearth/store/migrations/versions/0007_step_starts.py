"""Exactly once, or ask: step starts are journalled; retries and crashes are remembered.

- `step_starts`: one row per tool step run, committed before the tool runs. A start with no
  journal row at the same `seq` is a step the gateway was interrupted in.
- `workflow_executions.next_attempt_at`: the earliest time the current step may run again
  (retry backoff, crash backoff), so a restart does not retry at once.
- `workflow_executions.crash_count` / `crash_seq`: consecutive crashes of the runner at step
  run `crash_seq`; at the limit the execution fails instead of crashing forever.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Plain ADD COLUMN on both backends: rebuilding `workflow_executions` on SQLite (a batch
    # "move and copy") would drop the old table, and its ON DELETE CASCADE would take the
    # step journal with it.
    op.add_column("workflow_executions", sa.Column("next_attempt_at", TS))
    op.add_column(
        "workflow_executions",
        sa.Column("crash_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.add_column("workflow_executions", sa.Column("crash_seq", sa.Integer))
    op.create_table(
        "step_starts",
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "seq", name=op.f("pk_step_starts")),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_executions.id"],
            name=op.f("fk_step_starts_execution_id_workflow_executions"),
            ondelete="CASCADE",
        ),
        **({"sqlite_with_rowid": False} if sqlite else {}),
    )


def downgrade() -> None:
    op.drop_table("step_starts")
    # SQLite (3.35+) drops a plain column in place, without rebuilding the table.
    op.drop_column("workflow_executions", "crash_seq")
    op.drop_column("workflow_executions", "crash_count")
    op.drop_column("workflow_executions", "next_attempt_at")
