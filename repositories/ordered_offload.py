"""Run blocking work on a stream of items in a worker thread, in order, with a bounded backlog.

The event loop hands items over with `submit` and keeps receiving; one executor job at a time
drains the backlog, so the next item starts the moment the previous one is done instead of after
a round trip through the event loop (a thread hop that cost a 1 GiB upload about half a
millisecond per MiB: benchmarks/RESULTS.md). No thread is held while the backlog is empty, so a
slow client does not tie up the executor.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class OrderedOffload(Generic[T]):
    """`work(item)` for every submitted item, in submission order, at most `depth` items waiting or running.

    The first exception `work` raises is raised again by the next `submit` or by `finish`; the
    items queued behind it are dropped. After `finish` or `abort` returns, `work` is not running
    and will not run again, so whatever it uses may be closed.
    """

    def __init__(self, work: Callable[[T], None], *, depth: int = 2) -> None:
        self._work = work
        self._depth = depth
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Semaphore(depth)
        self._error: BaseException | None = None
        self._lock = threading.Lock()  # guards _backlog and _draining, shared with the worker thread
        self._backlog: collections.deque[T] = collections.deque()
        self._draining = False

    async def submit(self, item: T) -> None:
        """Queue `item`, waiting while `depth` items are already queued or running."""
        await self._room.acquire()
        if self._error is not None:
            self._room.release()
            raise self._error
        with self._lock:
            self._backlog.append(item)
            start = not self._draining
            self._draining = True
        if start:
            self._loop.run_in_executor(None, self._drain)

    async def finish(self) -> None:
        """Wait until every submitted item has run; raise the first error of `work`."""
        await self._settle()
        if self._error is not None:
            raise self._error

    async def abort(self) -> None:
        """Drop the items not yet started and wait for the one running, if any."""
        with self._lock:
            dropped = len(self._backlog)
            self._backlog.clear()
        for _ in range(dropped):
            self._room.release()
        settling = asyncio.ensure_future(self._settle())
        try:
            await asyncio.shield(settling)
        except asyncio.CancelledError:  # still wait: the caller closes what `work` uses next
            await settling
            raise

    async def _settle(self) -> None:
        for _ in range(self._depth):
            await self._room.acquire()
        for _ in range(self._depth):
            self._room.release()

    def _drain(self) -> None:  # in the worker thread
        while True:
            with self._lock:
                if not self._backlog:
                    self._draining = False
                    return
                item = self._backlog.popleft()
            try:
                self._work(item)
            except BaseException as exc:
                with self._lock:
                    dropped = len(self._backlog)
                    self._backlog.clear()
                    self._draining = False
                self._loop.call_soon_threadsafe(self._done, 1 + dropped, exc)
                return
            self._loop.call_soon_threadsafe(self._done, 1, None)

    def _done(self, items: int, error: BaseException | None) -> None:  # on the event loop
        if error is not None and self._error is None:
            self._error = error
        for _ in range(items):
            self._room.release()
