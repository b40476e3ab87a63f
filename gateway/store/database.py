"""Connecting to the metadata database and bringing its schema up to date with Alembic."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
_PG_MIGRATION_LOCK = 7_266_021  # advisory lock id: replicas starting together migrate one at a time


class DatabaseError(Exception):
    """The backend store URI is unusable; the message is one line for the operator."""


def async_url(uri: str) -> str:
    """`sqlite:///x.db` or `postgresql://...` as the SQLAlchemy URL of its async driver."""
    try:
        url = make_url(uri)
    except ArgumentError:
        hint = (
            " (an MLflow file store such as ./mlruns is not served directly: the gateway keeps its metadata in "
            "SQLite or PostgreSQL)"
            if "://" not in uri
            else ""
        )
        raise DatabaseError(f"'{uri}' is not a database URI; use sqlite:///path.db or postgresql://...{hint}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise DatabaseError("an in-memory SQLite store is lost at exit; give a file: sqlite:///mlruns.db")
        return str(url.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise DatabaseError(f"unsupported backend store '{backend}'; use sqlite:///path.db or postgresql://...")


def create_engine(uri: str) -> AsyncEngine:
    url = async_url(uri)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            # LIKE is case-sensitive, as on PostgreSQL and in MLflow (which sets the same pragma);
            # ILIKE is lower() on both sides
            cursor.execute("PRAGMA case_sensitive_like=true")
            cursor.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10)
    _ping_when_idle(engine)
    return engine


IDLE_BEFORE_PING = 0.5
"""Seconds a pooled PostgreSQL connection may rest before it is pinged at checkout, as HikariCP's
`aliveBypassWindowMs`: a ping is a round trip before the request's own statements (0.3-0.5 ms here),
and a connection that served a request moments ago is alive (if PostgreSQL restarted since, a read
runs again (`reconnecting`), so does a grouped write that failed before its COMMIT (`GroupWriter`),
another write fails and MLflow's client retries it, and SQLAlchemy replaces every older connection of
the pool)."""
_LAST_USED = "artifact_gateway_last_used"


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a connection at checkout only when it rested IDLE_BEFORE_PING seconds or more; a failed
    ping replaces it with a new connection (the pool's DisconnectionError protocol)."""

    @event.listens_for(engine.sync_engine, "connect")
    @event.listens_for(engine.sync_engine, "checkin")
    def _used(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < IDLE_BEFORE_PING:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever a dead connection raises: the pool connects again
            raise DisconnectionError(f"a pooled connection failed its ping: {exc}") from exc


async def reconnecting(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """`work` on a pooled connection, once more on a new one if that connection was dead: one dropped
    while it rested in the pool within IDLE_BEFORE_PING (PostgreSQL restarted, a proxy cut it) says
    nothing about the database now. Only for work that may run twice: reads, readiness checks."""
    try:
        async with engine.connect() as conn:
            return await work(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with engine.connect() as conn:
        return await work(conn)


async def probe(engine: AsyncEngine, statement: Executable) -> None:
    """Raise unless the database answers `statement` (a readiness check)."""

    async def answer(conn: AsyncConnection) -> None:
        await conn.execute(statement)

    await reconnecting(engine, answer)


def _upgrade(connection: Connection, revision: str = "head") -> None:
    from alembic import command  # only the process that migrates pays for Alembic
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the schema to the newest revision (or `revision`); safe when several processes start at once."""
    if engine.dialect.name == "sqlite":
        lock = await asyncio.to_thread(_lock_file, engine.url.database or "")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade, revision)
        finally:
            await asyncio.to_thread(os.close, lock)
        return
    async with engine.begin() as connection:
        await connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        await connection.run_sync(_upgrade, revision)


def _lock_file(database: str) -> int:
    """Hold an exclusive lock beside the database file; a missing directory is the operator's to make
    (a typo in the URI must not create a tree somewhere)."""
    directory = Path(database).expanduser().resolve().parent
    if not directory.is_dir():
        raise DatabaseError(f"the directory {directory} of the SQLite database does not exist; create it first")
    fd = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor is closed
    return fd
