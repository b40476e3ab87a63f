"""Writing an upload's bytes into its staging file: batched, in a worker thread, hashed on the way."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from repositories.local.os_errors import os_error
from repositories.local.staging import Staged
from repositories.ordered_offload import OrderedOffload
from repositories.paths import ArtifactPath
from repositories.writeback import WRITEBACK_WINDOW_BYTES, start_writeback

WRITE_BATCH_BYTES = 1 << 20

STREAM_BATCH_BYTES = 512 << 10
"""A streamed upload is handed to its writer thread in batches of about this many bytes."""


def write_batch(staged: Staged, chunks: list[bytes]) -> None:
    """Append `chunks` to the staging file (hashing them when `staged.digests` is set)."""
    for chunk in chunks:
        if staged.digests is not None:
            staged.digests.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(staged.fd, view)
            view = view[written:]
            staged.written += written
    pending = staged.written - staged.written_back
    if staged.early_writeback and pending >= WRITEBACK_WINDOW_BYTES:
        start_writeback(staged.fd, staged.base + staged.written_back, pending)
        staged.written_back = staged.written


async def _batches(body: AsyncIterator[bytes], batch_bytes: int) -> AsyncIterator[list[bytes]]:
    """Group network chunks into batches of about `batch_bytes`: one hand-over per batch, not per chunk."""
    batch: list[bytes] = []
    pending = 0
    async for chunk in body:
        batch.append(chunk)
        pending += len(chunk)
        if pending >= batch_bytes:
            yield batch
            batch, pending = [], 0
    if batch:
        yield batch


async def stream_to(path: ArtifactPath, staged: Staged, body: AsyncIterator[bytes]) -> None:
    """Write `body` into `staged` (hashing it when `staged.digests` is set) a batch at a time in a
    worker thread, receiving meanwhile.

    The event loop receives the next batch while the thread writes and hashes the previous ones, so
    the network and the disk overlap instead of taking turns. One batch is written while the next
    is received, no more: with the SHA-256 computed after the answer (`DeferredDigests`), the
    writer keeps up with the event loop, and a deeper queue (1 MiB batches, one more queued) no
    longer made a single upload faster, only 8 uploads at once 3 MiB larger (benchmarks/RESULTS.md).
    Errors from the body (a client gone) propagate unchanged, after the write in flight has finished.
    """

    def write(batch: list[bytes]) -> None:
        try:
            write_batch(staged, batch)
        except OSError as exc:
            raise os_error(exc, path) from exc

    writer = OrderedOffload(write, depth=1)
    try:
        async for batch in _batches(body, STREAM_BATCH_BYTES):
            await writer.submit(batch)
        await writer.finish()
    except BaseException:
        await writer.abort()
        raise
