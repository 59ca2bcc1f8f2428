"""Step runs say where the execution goes next.

A running execution's position (step, visit, attempt) is read from its latest journal row, so a
step needs only that one row written, not also an update of the execution row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.add_column(sa.Column("next_step_id", sa.String(64)))
        batch.add_column(sa.Column("next_visit_seq", sa.Integer))
        batch.add_column(sa.Column("next_attempt", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.drop_column("next_attempt")
        batch.drop_column("next_visit_seq")
        batch.drop_column("next_step_id")
