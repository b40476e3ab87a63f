"""SQL building blocks every store shares: dialect-aware inserts and upserts, the search comparisons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.store.errors import InvalidValue


def insert_statement(conn: AsyncConnection, table: Any) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (SQLite and PostgreSQL spell them alike)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


async def upsert(
    conn: AsyncConnection,
    table: Any,
    keys: dict[str, Any],
    values: dict[str, Any],
    *,
    only_if: Callable[[Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert or update the row whose primary key is `keys`, in one statement.

    Atomic, so concurrent writers of one row (replicas sharing PostgreSQL) neither fail on the key
    nor lose an update. `only_if(new)` limits the update to when the condition on the proposed
    row (`new`) and the stored one (`table.c`) holds.
    """
    statement = insert_statement(conn, table).values(**keys, **values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: statement.excluded[name] for name in values},
            where=None if only_if is None else only_if(statement.excluded),
        )
    )


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
