"""`one_of(column, values)`: `column IN values` with one statement text whatever the list's length.

SQLAlchemy renders `column.in_(values)` as `IN (?, ?, ...)` with one placeholder per value, so
a listing over 1, 2, ... 500 schedules is 500 different statements. Each driver keeps a cache of
prepared statements per connection (`sqlite3`: 128, asyncpg through SQLAlchemy: 100), and a
prepared statement with hundreds of parameters costs tens of kilobytes of native memory that no
Python profiler sees. Across the read pool and the writer that came to most of the gateway's
memory growth under the protocol fuzz (issue 18: +35.7 MB over 100 000 frames, +15 MB with the
caches shrunk to 16). Passing the list as one parameter keeps the statement text fixed:

- SQLite: `column IN (SELECT value FROM json_each(?))` with the list as JSON text;
- PostgreSQL: `column = ANY($1)` with the list as an array of the column's type.

The result is the same as `IN (...)`, including for an empty list (no row matches).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class _Members(TypeDecorator[list[Any]]):
    """A list bound as one parameter: JSON text on SQLite, an array on PostgreSQL."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.ARRAY(self.item))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value
        return json.dumps(value)


class _OneOf(FunctionElement[Any]):
    """Compiled per dialect below; its two clauses are the column and the bound list.

    Untyped on purpose: a Boolean-typed expression gets `= 1` appended on SQLite (no native
    booleans), and `(x IN ...) = 1` can no longer use the column's index.
    """

    name = "one_of"
    type = sa.types.NullType()
    inherit_cache = True


def one_of(column: sa.ColumnElement[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """`column IN values`, rendered with a single parameter (see the module's docstring)."""
    members = sa.bindparam(None, list(values), type_=_Members(column.type))
    return _OneOf(column, members)


@compiles(_OneOf, "sqlite")
def _sqlite(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, members = element.clauses
    # Both pieces are SQL the compiler rendered (a column and a placeholder), never values.
    each = f"json_each({compiler.process(members, **kw)})"
    return f"{compiler.process(column, **kw)} IN (SELECT value FROM {each})"  # noqa: S608


@compiles(_OneOf, "postgresql")
def _postgresql(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, members = element.clauses
    return f"{compiler.process(column, **kw)} = ANY({compiler.process(members, **kw)})"


@compiles(_OneOf)
def _unsupported(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(f"one_of() is not defined for {compiler.dialect.name}")
