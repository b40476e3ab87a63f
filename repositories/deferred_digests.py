"""SHA-256 of stored local files, computed after their upload has been answered.

Hashing a streamed upload as it arrives was a third of a 1 GiB upload's time on the local disk
(SHA-256 runs at about 1.8 GB/s on one core, beside the socket and the page-cache write:
benchmarks/RESULTS.md). A client that sends no digest to verify and asks for none
(Want-Repr-Digest) does not wait for it: the file is hashed once it is in place and the digest
recorded beside its bytes, where HEAD and GET find it. (The S3 adapter, which cannot attach a
digest to a multipart object afterwards, computes one only when asked.)

No digest is given up quietly: when too many files already wait, the next one is hashed before its
answer instead (`hash_now`), and a shutdown that leaves files unhashed logs which ones.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable

MAX_WAITING = 64
"""Files waiting to be hashed per repository; past this, the caller hashes the next one at once (`hash_now`)."""
READ_BYTES = 256 << 10
LOGGED_NAMES = 10
"""How many of the files a shutdown left unhashed its warning names."""

log = logging.getLogger("artifact_gateway.deferred_digests")

Record = Callable[[int, str, os.stat_result], None]
"""Records `sha256` for the file open at `fd`, whose state when hashed was `st`."""


class DeferredDigests:
    """Hash files in the background, one at a time, in the order given, and record each digest.

    A file is read through the descriptor that wrote it (open for reading and writing), so a rename,
    an overwrite or a delete of its path meanwhile cannot point the hash at other bytes. Its digest
    is recorded only if its size and modification time did not change while it was read, and not at
    all once it has no name left.
    """

    def __init__(self, record: Record) -> None:
        self._record = record
        self._waiting: collections.deque[tuple[int, str]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._block: bytearray | None = None  # one read buffer, reused: files are hashed one at a time
        self._abandoned: list[str] = []  # stopped while being read

    def add(self, fd: int, name: str) -> bool:
        """Hash the file open at `fd` after those already waiting; this object now owns `fd`.

        `name` says which file it is in the warning of a shutdown that leaves it unhashed. False when
        `MAX_WAITING` files already wait or this object is closed: the caller keeps `fd`.
        """
        if self._stop.is_set() or len(self._waiting) >= MAX_WAITING:
            return False
        self._waiting.append((fd, name))
        if self._task is None:
            self._task = asyncio.create_task(self._hash_waiting())
        return True

    def hash_now(self, fd: int) -> str | None:
        """Hash and record the file open at `fd` in the calling thread (blocking), and close `fd`.

        For a file `add` refused. The digest, or None when the file changed or lost its name while
        read, or this object was closed.
        """
        try:
            return self._hash_and_record(fd, bytearray(READ_BYTES))
        except _Stopped:
            return None

    async def settled(self) -> None:
        """Return once every file added so far has been hashed (or given up)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop hashing: the file being read is abandoned within one block, the waiting ones dropped.

        Logs a warning naming the files left without a digest, if any.
        """
        self._stop.set()
        dropped = list(self._waiting)
        self._waiting.clear()
        if self._task is not None:
            await asyncio.shield(self._task)
        await asyncio.to_thread(_close_all, [fd for fd, _ in dropped])
        unhashed = self._abandoned + [name for _, name in dropped]
        if unhashed:
            log.warning(
                "stopped before hashing every upload: these files keep no SHA-256 (GET and HEAD answer "
                "without Repr-Digest; uploading them again records one)",
                extra={"fields": {"files": len(unhashed), "paths": unhashed[:LOGGED_NAMES]}},
            )

    async def _hash_waiting(self) -> None:
        try:
            while self._waiting and not self._stop.is_set():
                fd, name = self._waiting.popleft()
                if self._block is None:
                    self._block = bytearray(READ_BYTES)
                try:
                    await asyncio.to_thread(self._hash_and_record, fd, self._block)
                except _Stopped:
                    self._abandoned.append(name)
        finally:
            self._task = None

    def _hash_and_record(self, fd: int, block: bytearray) -> str | None:  # owns fd
        """The digest of the file open at `fd`, recorded; None when it changed or lost its name meanwhile.

        Raises `_Stopped` once this object is closed.
        """
        try:
            before = os.fstat(fd)
            if before.st_nlink == 0:
                return None
            sha256, size = file_sha256(fd, block, self._stop)
            after = os.fstat(fd)
            unchanged = after.st_size == before.st_size == size and after.st_mtime_ns == before.st_mtime_ns
            if not (unchanged and after.st_nlink):
                return None
            self._record(fd, sha256, after)
            return sha256
        except OSError:
            return None  # the file stays without a recorded digest, as one copied in by hand
        finally:
            os.close(fd)


class _Stopped(Exception):
    pass


def file_sha256(fd: int, block: bytearray, stop: threading.Event | None = None) -> tuple[str, int]:
    """Hex SHA-256 and length of the file open at `fd`, read from its start through `block`.

    Raises `_Stopped` once `stop` is set.
    """
    sha256 = hashlib.sha256()
    view = memoryview(block)
    offset = 0
    while read := os.preadv(fd, [block], offset):
        if stop is not None and stop.is_set():
            raise _Stopped
        sha256.update(view[:read])
        offset += read
    return sha256.hexdigest(), offset


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
