"""Upgrading a database that already holds data keeps it (the journal table is rebuilt)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from hearth.store import Database
from hearth.store.executions import ExecutionRepository
from hearth.store.migrate import alembic_config, head_revision

WHEN = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _upgrade_to(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    engine.dispose()


async def test_journal_rows_survive_the_0006_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    _upgrade_to(f"sqlite:///{path}", "0005")
    engine = sa.create_engine(f"sqlite:///{path}")
    stamp = "2026-11-01 09:00:00.000000"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO workflows VALUES ('w', 'h', 'name: W', 'w.yaml', ?)", (stamp,)
        )
        conn.exec_driver_sql(
            "INSERT INTO workflow_executions (id, workflow_id, content_hash, status, triggered_by,"
            " input, current_step_id, visit_seq, attempt, step_count, cancel_requested,"
            " started_at, updated_at) VALUES ('e', 'w', 'h', 'completed', 'manual', '{}', 'b',"
            " 2, 1, 2, 0, ?, ?)",
            (stamp, stamp),
        )
        for seq, step in ((1, "a"), (2, "b")):
            conn.exec_driver_sql(
                "INSERT INTO step_runs VALUES ('e', ?, ?, 1, 'success', '{\"n\": 1}', NULL, ?, ?)",
                (seq, step, stamp, stamp),
            )
    engine.dispose()

    db = Database.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        assert await db.upgrade() == head_revision()
        steps = await ExecutionRepository(db).steps("e")
    finally:
        await db.dispose()
    assert [(s.seq, s.step_id, s.output, s.started_at) for s in steps] == [
        (1, "a", {"n": 1}, WHEN),
        (2, "b", {"n": 1}, WHEN),
    ]
    assert all(s.next_step_id is None for s in steps)
    check = sa.create_engine(f"sqlite:///{path}")
    with check.connect() as conn:
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'step_runs'"
        ).scalar_one()
    check.dispose()
    assert "WITHOUT ROWID" in ddl
