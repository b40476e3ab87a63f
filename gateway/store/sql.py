"""SQL building blocks every store shares: dialect-aware inserts and upserts, the search comparisons."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.store.errors import InvalidValue


def insert_for(dialect: str, table: Any) -> Any:
    """An INSERT with the ON CONFLICT clauses of `dialect` (SQLite and PostgreSQL spell them alike)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def insert_statement(conn: AsyncConnection | Connection, table: Any) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses for `conn`'s database."""
    return insert_for(conn.dialect.name, table)


def upsert_statement(
    dialect: str,
    table: Any,
    keys: Sequence[str],
    values: Sequence[str],
    only_if: Callable[[Any], ColumnElement[bool]] | None = None,
) -> Any:
    """Insert or update the row whose primary key is `keys`, in one statement whose values are given
    when it is executed (one row or many): the statement can be built once and reused.

    Atomic, so concurrent writers of one row (replicas sharing PostgreSQL) neither fail on the key
    nor lose an update. `only_if(new)` limits the update to when the condition on the proposed
    row (`new`) and the stored one (`table.c`) holds.
    """
    statement = insert_for(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in values},
        where=None if only_if is None else only_if(statement.excluded),
    )


async def upsert(
    conn: AsyncConnection,
    table: Any,
    keys: dict[str, Any],
    values: dict[str, Any],
    *,
    only_if: Callable[[Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert or update the row whose primary key is `keys` with `values` (see `upsert_statement`)."""
    statement = upsert_statement(conn.dialect.name, table, list(keys), list(values), only_if)
    await conn.execute(statement, {**keys, **values})


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """A comparison of the search languages; LIKE is case-sensitive on both databases, ILIKE is not."""
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == "LIKE":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "ILIKE":
        return func.lower(column).like(func.lower(value))
    if op == "IN":
        return column.in_(list(value))  # type: ignore[no-any-return]
    if op == "NOT IN":
        return column.not_in(list(value))  # type: ignore[no-any-return]
    if op == "IS NULL":
        return column.is_(None)  # type: ignore[no-any-return]
    if op == "IS NOT NULL":
        return column.is_not(None)  # type: ignore[no-any-return]
    raise InvalidValue(f"Invalid comparator '{op}'")


def plain_rows(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """The rows of a SELECT as plain tuples, for reads of thousands of rows (a long metric history).

    On SQLite straight from the driver's cursor, inside the connection's transaction: SQLAlchemy's row
    objects and result processing cost about 4 µs a row here, 40 ms for a history of 10,000 points
    where the driver takes 10. The query's bound values go to the driver as they are (strings and
    numbers: no bind processing). Values come back as the driver gives them (a Boolean column as 0 or
    1 on SQLite). Elsewhere through SQLAlchemy.
    """
    if conn.dialect.name != "sqlite":
        return [tuple(row) for row in conn.execute(query).all()]
    compiled = query.compile(dialect=conn.dialect)
    return driver_rows(conn, str(compiled), [compiled.params[name] for name in compiled.positiontup or ()])


def sqlite_text(query: Any) -> str:
    """`query` as SQLite text with positional placeholders, its bound values in their order of creation:
    compile it once (cached by the caller) and run it with `driver_rows`."""
    return str(query.compile(dialect=sqlite.dialect()))


def driver_rows(conn: Connection, text: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of `text` run on `conn`'s driver connection (inside its transaction, if any): plain tuples on
    SQLite, asyncpg's records (read by position) on PostgreSQL, whose `text` numbers its placeholders
    ($1) and whose adapter prepares it once per connection."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(text, values)
        return list(cursor.fetchall())
    finally:
        cursor.close()
