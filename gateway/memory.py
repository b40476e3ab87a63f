"""glibc's allocator tuned for streaming, and freed memory handed back to the OS (a no-op elsewhere).

Uploads allocate part buffers and batches in bursts; without these measures glibc keeps the freed
memory resident, so a worker's RSS would stay at its busiest figure long after the burst, or hands
it back so eagerly that every chunk of a stream lands on fresh pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

from gateway.http.middleware import InFlight
from repositories.libc import libc_function

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 4 << 20
_TRIM_THRESHOLD_BYTES = 16 << 20
IDLE_TRIM_INTERVAL_S = 5.0


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, functions, the app) out of the cyclic collector's reach.

    They live as long as the worker, yet a full collection walked all of them with the event loop
    stopped: 21-27 ms, or 44-50 ms with the tracking store, every few thousand requests; about 1 ms
    now. That pause was the worst case of every request in flight (the small-upload p99 did not
    move measurably: benchmarks/RESULTS.md). Call once, when the worker is ready to serve.
    """
    gc.collect()
    gc.freeze()


def tune_allocator() -> None:
    """Set glibc's two thresholds for a server that streams: call once, before serving.

    - Blocks of 4 MiB and more (upload part buffers) are mmap-ed, so they are freed for real. glibc
      raises its mmap threshold after the first large free and then carves later part buffers out
      of the heap, where they stay resident once the upload is over (measured: 75 MiB before two
      1 GiB S3 uploads, 100 MiB after; 76 with this). Part buffers are reused within an upload, so
      this costs a few mmap calls per upload.
    - The top of the heap is handed back only past 16 MiB free. Setting the mmap threshold freezes
      glibc's trim threshold at 128 KiB, and a streamed body's chunks (256 KiB socket reads, the
      parser's slices) are allocated and freed one after another: the heap top shrank and grew
      with every few chunks, each time with fresh zeroed pages. A 1 GiB upload took 120,000 page
      faults and about 0.4 CPU-s of them; with this, a few hundred (benchmarks/RESULTS.md). What
      stays above the peak is returned by `return_freed_memory_when_idle`.
    """
    mallopt = libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)


async def return_freed_memory_when_idle(in_flight: InFlight, interval_s: float = IDLE_TRIM_INTERVAL_S) -> None:
    """Every `interval_s`, if no request is in flight, give the heap's free pages back to the OS.

    After a burst of concurrent uploads glibc keeps the freed heap (measured: a 64-client soak left
    a worker at 170 MiB against 86 before, and a second soak did not grow it, so it was retention,
    not a leak). `malloc_trim` releases it; it runs in a thread, and only when the worker is idle.
    """
    malloc_trim = libc_function("malloc_trim")
    if malloc_trim is None:
        return
    while True:
        await asyncio.sleep(interval_s)
        if in_flight.count == 0:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(malloc_trim, 0)
