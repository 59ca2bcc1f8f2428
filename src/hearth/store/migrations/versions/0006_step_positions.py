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
    # On SQLite the journal also becomes a WITHOUT ROWID table clustered on its primary key
    # (execution_id, seq): one b-tree instead of a rowid table plus an index, so a step's commit
    # writes one page fewer. (PostgreSQL has no rowid; the option is ignored there.)
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "step_runs",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_with_rowid": False} if sqlite else {},
    ) as batch:
        batch.add_column(sa.Column("next_step_id", sa.String(64)))
        batch.add_column(sa.Column("next_visit_seq", sa.Integer))
        batch.add_column(sa.Column("next_attempt", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.drop_column("next_attempt")
        batch.drop_column("next_visit_seq")
        batch.drop_column("next_step_id")
