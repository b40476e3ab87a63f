"""Group commit: small writes that arrive together share one transaction, each answered after its commit.

A write is a synchronous function of a SQLAlchemy `Connection` (Core statements only, no other effect).
`GroupWriter.write` queues it and waits; a lane takes every write queued meanwhile (up to `MAX_GROUP`)
and runs them in one transaction; when one of them fails, the group runs again with each write inside
its own SAVEPOINT, so a write that fails is rolled back alone and its caller gets its error while the
others commit. Nobody is answered before the commit of their group returns; if
the commit itself fails, every write of the group gets that error and none of them is stored.

On SQLite the lane is one thread holding its own `sqlite3` connection (`BEGIN IMMEDIATE`, WAL,
`synchronous=NORMAL`): a whole group costs one hop off the event loop, the statements are prepared once
per connection (the driver caches them by text), and the one database lock is taken once per group
instead of being fought over by every request. On PostgreSQL a few lanes each run their group over
the async engine's pool (`run_sync`), so groups still overlap there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.database import reconnecting

T = TypeVar("T")
Write = Callable[[Connection], T]
"""One request's write: runs inside the group's transaction, raises to roll back only itself."""

MAX_GROUP = 256
"""Writes per transaction at most: bounds how long one group holds the lock and the others wait."""
POSTGRES_LANES = 4
"""Groups in flight at once on PostgreSQL, each on its own pooled connection."""


@dataclass
class _Pending(Generic[T]):
    write: Write[T]
    done: asyncio.Future[T] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def run_group(conn: Connection, writes: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
    """Run `writes` in one transaction: (ok, result or error) of each.

    First all of them one after the other; only when one of them fails is that rolled back and the
    group run again, each write in its own SAVEPOINT, so the failed one is rolled back alone. The
    writes are pure database work, so running one again changes nothing but the time taken, and a
    group where nothing fails (nearly all of them) costs no SAVEPOINT and RELEASE: on PostgreSQL two
    round trips of each write's three or four.
    """
    if len(writes) > 1:
        transaction = conn.begin()
        try:
            results = [write(conn) for write in writes]
        except Exception:
            transaction.rollback()  # a write failed: run again, each write in its own SAVEPOINT
        else:
            transaction.commit()  # a failing commit is every write's error (`GroupWriter._lane`)
            return [(True, result) for result in results]
    outcomes: list[tuple[bool, Any]] = []
    with conn.begin():
        if len(writes) == 1:
            try:
                outcomes.append((True, writes[0](conn)))
            except Exception as exc:  # the transaction rolls back: nothing else was in it
                outcomes.append((False, exc))
                raise _Failed(exc) from exc
            return outcomes
        for write in writes:
            try:
                with conn.begin_nested():
                    outcomes.append((True, write(conn)))
            except Exception as exc:  # rolled back to its savepoint; the others go on
                outcomes.append((False, exc))
    return outcomes


class _Failed(Exception):
    """A group of one failed: its transaction is rolled back, its error goes to its caller."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    connection.isolation_level = None  # the driver opens no transaction of its own
    cursor = connection.cursor()
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL", "case_sensitive_like=true"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def sqlite_writer_engine(engine: AsyncEngine) -> Engine:
    """A synchronous engine on the same SQLite file for the writer thread: one connection, explicit
    `BEGIN IMMEDIATE` (the write lock at once, SAVEPOINTs that work), the same pragmas as the async engine."""
    url = engine.url.set(drivername="sqlite+pysqlite")
    writer = create_engine(url, pool_size=1, max_overflow=0, connect_args={"timeout": 30})
    event.listen(writer, "connect", _sqlite_pragmas)

    @event.listens_for(writer, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return writer


def sqlite_reader_engine(engine: AsyncEngine, connections: int) -> Engine:
    """A synchronous engine on the same SQLite file for the reader threads (WAL: readers never wait)."""
    url = engine.url.set(drivername="sqlite+pysqlite")
    reader = create_engine(
        url, pool_size=connections, max_overflow=0, connect_args={"timeout": 30, "check_same_thread": False}
    )
    event.listen(reader, "connect", _sqlite_pragmas)

    @event.listens_for(reader, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # one snapshot for all the queries of a read

    return reader


class Reader:
    """Runs a synchronous read (several queries) in one hop: on SQLite in a thread over its own
    connections, each query an in-process call; on PostgreSQL over the async pool (`run_sync`)."""

    THREADS = 4

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._sync_engine: Engine | None = None

    async def read(self, read: Write[T]) -> T:
        if self.engine.dialect.name != "sqlite":
            # No BEGIN and ROLLBACK, two round trips of a read of three or four: under PostgreSQL's
            # READ COMMITTED each statement sees its own snapshot, in a transaction or not.
            async def autocommit(conn: AsyncConnection) -> T:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await conn.run_sync(read)

            return await reconnecting(self.engine, autocommit)
        if self._threads is None:
            self._threads = concurrent.futures.ThreadPoolExecutor(self.THREADS, thread_name_prefix="sqlite-reader")
            self._sync_engine = sqlite_reader_engine(self.engine, self.THREADS)
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._run, read)

    def _run(self, read: Write[T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            return read(conn)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None


class GroupWriter:
    """Queues writes and commits them in groups; started on first use, closed with `close()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._queue: asyncio.Queue[_Pending[Any]] | None = None
        self._lanes: list[asyncio.Task[None]] = []
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._sync_engine: Engine | None = None
        self.groups = 0
        """Transactions committed or tried so far (tests read it to see writes grouped)."""

    async def write(self, write: Write[T]) -> T:
        """Run `write` in the next group's transaction; its result once that transaction has committed."""
        if self._queue is None:
            self._start()
        assert self._queue is not None
        pending: _Pending[T] = _Pending(write)
        self._queue.put_nowait(pending)
        return await asyncio.shield(pending.done)  # a caller that goes away does not cancel the group

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        lanes = 1
        if self.engine.dialect.name == "sqlite":
            self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        else:
            lanes = POSTGRES_LANES
        self._lanes = [asyncio.create_task(self._lane()) for _ in range(lanes)]

    async def _lane(self) -> None:
        assert self._queue is not None
        while True:
            group = [await self._queue.get()]
            while len(group) < MAX_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
            writes = [pending.write for pending in group]
            self.groups += 1
            try:
                outcomes = await self._run(writes)
            except _Failed as failed:
                outcomes = [(False, failed.error)]
            except Exception as exc:  # the commit failed: none of the group is stored
                outcomes = [(False, exc)] * len(group)
            for pending, (ok, value) in zip(group, outcomes, strict=True):
                self._queue.task_done()
                if pending.done.done():
                    continue
                if ok:
                    pending.done.set_result(value)
                elif isinstance(value, StopIteration):  # a future refuses it, and the lane would end with it
                    error = RuntimeError(f"a write raised StopIteration: {value!r}")
                    error.__cause__ = value
                    pending.done.set_exception(error)
                else:
                    pending.done.set_exception(value)

    async def _run(self, writes: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        if self._thread is not None:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._run_in_thread, writes)
        try:
            return await self._run_pooled(writes)
        except _Failed as failed:
            if not (isinstance(failed.error, DBAPIError) and failed.error.connection_invalidated):
                raise
        # The group's one write met a connection PostgreSQL dropped within IDLE_BEFORE_PING of its last
        # use (restarted, or a proxy cut it): it failed before its COMMIT was sent, so nothing of it is
        # stored and it runs once more on a new connection instead of answering 500. A group of several
        # recovers inside `run_group` (the SAVEPOINT pass runs on a new connection); a failed COMMIT is
        # never run again.
        return await self._run_pooled(writes)

    async def _run_pooled(self, writes: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        async with self.engine.connect() as conn:
            outcomes: list[tuple[bool, Any]] = await conn.run_sync(run_group, writes)
            return outcomes

    def _run_in_thread(self, writes: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        if self._sync_engine is None:
            self._sync_engine = sqlite_writer_engine(self.engine)
        with self._sync_engine.connect() as conn:
            return run_group(conn, writes)

    async def close(self) -> None:
        """Finish the queued writes, stop the lanes and close the writer's connection."""
        if self._queue is not None:
            await self._queue.join()
        for lane in self._lanes:
            lane.cancel()
        await asyncio.gather(*self._lanes, return_exceptions=True)
        self._lanes = []
        self._queue = None
        if self._thread is not None:
            if self._sync_engine is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, self._sync_engine.dispose)
                self._sync_engine = None
            self._thread.shutdown(wait=True)
            self._thread = None
