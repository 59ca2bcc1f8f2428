"""Executions on PostgreSQL: the hot writes as grouped asyncpg statements (see `pg_writer`).

A step is one statement: a data-modifying CTE moves the execution row (fenced on
`owner_node` and `status = 'running'`, which also takes the row lock a takeover waits for) and
appends the journal row only for the executions it moved. Executions that step together share
that statement through `unnest`, so eight runners are one round trip and one commit. Reads and
the rare writes stay on the SQLAlchemy path of `ExecutionRepository`.

The SQL is assembled from the table definitions' column names (never from values, which are
all bound parameters), hence the `noqa: S608` on those lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hearth.store.database import Database
from hearth.store.executions import ExecutionRepository, PinnedSource
from hearth.store.pg_writer import Grouped, PgWriter
from hearth.store.records import ExecutionRecord, StepRunRecord
from hearth.store.tables import UtcDateTime, step_runs, step_starts, workflow_executions

_Convert = Callable[[Any], Any]


def _pg_type(column: sa.Column[Any]) -> tuple[str, str, _Convert | None]:
    """(array element type, cast from it to the column, value conversion) for a column.

    JSON travels as text and is cast, so the values need no codec on the connection.
    """
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return "timestamptz", "", None
    if isinstance(kind, sa.JSON):
        return "text", "::json", json.dumps
    if isinstance(kind, sa.Boolean):
        return "bool", "", None
    if isinstance(kind, sa.Integer):
        return "int4", "", None
    return "text", "", None


class _Columns:
    """Named unnest columns with their types and conversions, for one statement."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.types: list[str] = []
        self.casts: list[str] = []
        self.converts: list[_Convert | None] = []

    def add(self, name: str, column: sa.Column[Any]) -> None:
        kind, cast, convert = _pg_type(column)
        self.names.append(name)
        self.types.append(kind)
        self.casts.append(cast)
        self.converts.append(convert)

    def cast(self, name: str) -> str:
        return f'v."{name}"{self.casts[self.names.index(name)]}'

    def source(self) -> str:
        """`v`: one row per write, `i` its index in the group."""
        arrays = ", ".join(f"${n + 2}::{t}[]" for n, t in enumerate(self.types))
        names = ", ".join(f'"{n}"' for n in self.names)
        return f"v AS (SELECT * FROM unnest($1::int4[], {arrays}) AS v(i, {names}))"  # noqa: S608

    def row(self, values: Sequence[Any]) -> list[Any]:
        return [
            value if convert is None else convert(value)
            for value, convert in zip(values, self.converts, strict=True)
        ]


_EX = workflow_executions.c
_RUN_COLUMNS = [c.name for c in step_runs.c]
_EXECUTION_COLUMNS = [c.name for c in workflow_executions.c]
_START_COLUMNS = [c.name for c in step_starts.c]


def _transition_statement(keys: tuple[str, ...], with_run: bool) -> tuple[Grouped, _Columns]:
    columns = _Columns()
    columns.add("w_id", workflow_executions.c.id)
    columns.add("w_node", workflow_executions.c.owner_node)
    for key in keys:
        columns.add(key, workflow_executions.c[key])
    if with_run:
        for name in _RUN_COLUMNS:
            columns.add(f"r_{name}", step_runs.c[name])
    sets = ", ".join(f'"{key}" = {columns.cast(key)}' for key in keys)
    sql = (
        f"WITH {columns.source()}, moved AS ("  # noqa: S608
        f"UPDATE workflow_executions AS e SET {sets} FROM v "
        "WHERE e.id = v.w_id AND e.owner_node = v.w_node AND e.status = 'running' "
        "RETURNING v.i)"
    )
    if with_run:
        insert = ", ".join(f'"{name}"' for name in _RUN_COLUMNS)
        select = ", ".join(columns.cast(f"r_{name}") for name in _RUN_COLUMNS)
        sql += (
            f", journal AS (INSERT INTO step_runs ({insert}) "  # noqa: S608
            f"SELECT {select} FROM v JOIN moved USING (i))"
        )
    sql += " SELECT i FROM moved"
    return Grouped(sql, len(columns.names), fenced=True), columns


def _advance_statement() -> tuple[Grouped, _Columns]:
    """A step that moves on: the position comes from the journal row's `next_*` columns, so
    the statement carries each value once (fewer arrays to encode per step)."""
    columns = _Columns()
    for name in _RUN_COLUMNS:
        columns.add(name, step_runs.c[name])
    columns.add("w_node", workflow_executions.c.owner_node)
    insert = ", ".join(f'"{name}"' for name in _RUN_COLUMNS)
    select = ", ".join(columns.cast(name) for name in _RUN_COLUMNS)
    sql = (
        f"WITH {columns.source()}, moved AS ("  # noqa: S608
        "UPDATE workflow_executions AS e SET current_step_id = v.next_step_id, "
        "visit_seq = v.next_visit_seq, attempt = coalesce(v.next_attempt, 1), "
        "step_count = v.seq, wake_at = NULL, updated_at = v.finished_at FROM v "
        "WHERE e.id = v.execution_id AND e.owner_node = v.w_node AND e.status = 'running' "
        "RETURNING v.i), "
        f"journal AS (INSERT INTO step_runs ({insert}) SELECT {select} FROM v JOIN moved USING (i))"
        " SELECT i FROM moved"
    )
    return Grouped(sql, len(columns.names), fenced=True), columns


def _create_statement(with_pin: bool) -> tuple[Grouped, _Columns]:
    columns = _Columns()
    for name in _EXECUTION_COLUMNS:
        columns.add(name, workflow_executions.c[name])
    sql = f"WITH {columns.source()}"
    if with_pin:
        columns.add("p_source", sa.Column("source", sa.Text))
        columns.add("p_path", sa.Column("path", sa.Text))
        sql = (
            f"WITH {columns.source()}, pin AS ("  # noqa: S608
            "INSERT INTO workflows (workflow_id, content_hash, source, path, created_at) "
            "SELECT DISTINCT ON (v.workflow_id, v.content_hash) v.workflow_id, v.content_hash, "
            "v.p_source, v.p_path, v.started_at FROM v ON CONFLICT DO NOTHING)"
        )
    insert = ", ".join(f'"{name}"' for name in _EXECUTION_COLUMNS)
    select = ", ".join(columns.cast(name) for name in _EXECUTION_COLUMNS)
    sql += f" INSERT INTO workflow_executions ({insert}) SELECT {select} FROM v"  # noqa: S608
    return Grouped(sql, len(columns.names), fenced=False), columns


def _mark_started_statement() -> tuple[Grouped, _Columns]:
    """Journal a step's start only while the node owns the running execution.

    `FOR SHARE` holds the execution row until the batch commits: a node claiming the execution
    meanwhile (its UPDATE waits for the lock) then finds the start and asks instead of
    running the action again, and a node that already lost it journals nothing and stops.
    """
    columns = _Columns()
    for name in _START_COLUMNS:
        columns.add(name, step_starts.c[name])
    columns.add("w_node", workflow_executions.c.owner_node)
    insert = ", ".join(f'"{name}"' for name in _START_COLUMNS)
    select = ", ".join(columns.cast(name) for name in _START_COLUMNS)
    sql = (
        f"WITH {columns.source()}, owned AS ("  # noqa: S608
        "SELECT v.i FROM v JOIN workflow_executions AS e ON e.id = v.execution_id "
        "WHERE e.owner_node = v.w_node AND e.status = 'running' FOR SHARE OF e), "
        f"journal AS (INSERT INTO step_starts ({insert}) SELECT {select} FROM v "
        "JOIN owned USING (i) ON CONFLICT DO NOTHING) SELECT i FROM owned"
    )
    return Grouped(sql, len(columns.names), fenced=True), columns


class PostgresExecutions(ExecutionRepository):
    """`ExecutionRepository` whose hot writes go through the grouping `PgWriter`."""

    def __init__(self, db: Database, writer: PgWriter) -> None:
        super().__init__(db)
        self._writer = writer
        self._transitions: dict[tuple[tuple[str, ...], bool], tuple[Grouped, _Columns]] = {}
        self._create = _create_statement(with_pin=False)
        self._create_pinning = _create_statement(with_pin=True)
        self._mark_started = _mark_started_statement()
        self._advance = _advance_statement()

    async def create(self, record: ExecutionRecord, pin: PinnedSource) -> None:
        values = [record.__dict__[name] for name in _EXECUTION_COLUMNS]
        if (pin.workflow_id, pin.content_hash) in self._pinned:
            statement, columns = self._create
        else:
            statement, columns = self._create_pinning
            values += [pin.source, pin.path]
        await self._writer.grouped(statement, columns.row(values))
        self.remember_pinned(pin)

    async def transition(
        self,
        execution_id: str,
        node: str,
        values: dict[str, Any],
        run: StepRunRecord | None = None,
    ) -> bool:
        keys = tuple(values)
        key = (keys, run is not None)
        found = self._transitions.get(key)
        if found is None:
            found = self._transitions[key] = _transition_statement(keys, run is not None)
        statement, columns = found
        row = [execution_id, node, *values.values()]
        if run is not None:
            row += [run.__dict__[name] for name in _RUN_COLUMNS]
        applied: bool = await self._writer.grouped(statement, columns.row(row))
        return applied

    async def advance(self, execution_id: str, node: str, run: StepRunRecord) -> bool:
        """The journal row and the row's new position in one statement (a row lock as fence)."""
        assert run.next_visit_seq is not None, "advance needs the position the step moves to"
        assert run.execution_id == execution_id
        statement, columns = self._advance
        row = [run.__dict__[name] for name in _RUN_COLUMNS]
        row.append(node)
        applied: bool = await self._writer.grouped(statement, columns.row(row))
        return applied

    async def mark_started(
        self, execution_id: str, node: str, seq: int, step_id: str, attempt: int, at: datetime
    ) -> bool:
        statement, columns = self._mark_started
        owned: bool = await self._writer.grouped(
            statement, columns.row([execution_id, seq, step_id, attempt, at, node])
        )
        return owned

    async def settle(self) -> None:
        await self._writer.settle()
