"""Who answered an approval, through which channel, from which address.

`resolved_at` already says when; these say who: the connection's client name (from hello),
the channel (ws, cli, telegram), the user where the channel knows one, and the peer address.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = ("answered_client", "answered_channel", "answered_user", "answered_address")


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("answered_client", sa.String(128)))
        batch.add_column(sa.Column("answered_channel", sa.String(32)))
        batch.add_column(sa.Column("answered_user", sa.String(128)))
        batch.add_column(sa.Column("answered_address", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
