"""Flushing several directories at once: the directories of a new folder chain, each with a new entry.

Flushed one after the other, each `fsync` waits for a disk cache flush of its own; issued together,
the block layer merges the flushes that are pending at the same moment. On this machine's virtual disk
under load, the six directories of a new run's first upload took 25 ms one after the other and 2 ms
together (`benchmarks/RESULTS.md`). The answer still waits for every one of them.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor

FLUSH_THREADS = 8
"""Threads of the pool that flushes the directories beyond the first, for all uploads of the worker."""

_pool: tuple[int, ThreadPoolExecutor] | None = None


def _flush_pool() -> ThreadPoolExecutor:
    """This process's flushing threads (a forked worker makes its own: threads do not survive a fork).

    Its own pool, not the executor the caller runs in: a job waiting on jobs of its own pool could
    wait forever once every thread of it waits the same way.
    """
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="directory-fsync"))
    return _pool[1]


def fsync_together(fds: Collection[int]) -> None:
    """`fsync` every descriptor of `fds`, all at once when there are several; returns once all are done.

    The first error is raised, but only after every flush has finished: the caller closes the
    descriptors next, and none may be closed while a thread still flushes it.
    """
    if not fds:
        return
    first, *others = fds
    if not others:  # an existing folder: its one new entry, flushed here without a thread hop
        os.fsync(first)
        return
    pending: list[Future[None]] = [_flush_pool().submit(os.fsync, fd) for fd in others]
    errors: list[BaseException] = []
    try:
        os.fsync(first)
    except OSError as exc:
        errors.append(exc)
    for flush in pending:
        error = flush.exception()  # waits for it
        if error is not None:
            errors.append(error)
    if errors:
        raise errors[0]
