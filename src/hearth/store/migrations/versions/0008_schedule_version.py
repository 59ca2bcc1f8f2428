"""Schedules carry a version, bumped by every write.

`schedule.update` and `heartbeat.configure` read a schedule, check the change against it and
write it back. Writing only when the version is still the one read (and retrying otherwise)
means a tick claimed in between is never undone: its run count, last execution, failure count
and state stay as the claim left them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(
            sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("version")
