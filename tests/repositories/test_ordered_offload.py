"""OrderedOffload: blocking work on a stream of items, in order, in a thread, with a bounded backlog."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from repositories.ordered_offload import OrderedOffload


async def test_items_run_in_order_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    done: list[int] = []
    threads: set[int] = set()

    def work(item: int) -> None:
        threads.add(threading.get_ident())
        time.sleep(0.001 * (item % 3))  # uneven work must not reorder anything
        done.append(item)

    offload = OrderedOffload(work)
    for item in range(50):
        await offload.submit(item)
    await offload.finish()
    assert done == list(range(50))
    assert loop_thread not in threads


async def test_submit_waits_while_depth_items_are_queued_or_running() -> None:
    release = threading.Event()
    started: list[int] = []

    def work(item: int) -> None:
        started.append(item)
        release.wait(5)

    offload = OrderedOffload(work, depth=2)
    await offload.submit(1)
    await offload.submit(2)
    third = asyncio.ensure_future(offload.submit(3))
    await asyncio.sleep(0.1)
    assert not third.done()  # two held: the first running, the second queued
    assert started == [1]
    release.set()
    await asyncio.wait_for(third, 5)
    await offload.finish()
    assert started == [1, 2, 3]


async def test_the_first_error_is_raised_and_the_items_behind_it_are_dropped() -> None:
    ran: list[int] = []
    gate = threading.Event()

    def work(item: int) -> None:
        gate.wait(5)
        if item == 2:
            raise OSError(28, "No space left on device")
        ran.append(item)

    offload = OrderedOffload(work, depth=3)
    for item in (1, 2, 3):
        await offload.submit(item)
    gate.set()
    with pytest.raises(OSError, match="No space left"):
        await offload.finish()
    assert ran == [1]  # 3 was queued behind the failure and never ran
    with pytest.raises(OSError, match="No space left"):
        await offload.submit(4)
    assert ran == [1]


class HeldWork:
    """Work that signals when an item starts and finishes it only once released."""

    def __init__(self) -> None:
        self.running = threading.Event()
        self.release = threading.Event()
        self.finished: list[int] = []

    def __call__(self, item: int) -> None:
        self.running.set()
        self.release.wait(5)
        time.sleep(0.05)
        self.finished.append(item)


async def test_abort_drops_the_backlog_and_waits_for_the_running_item() -> None:
    work = HeldWork()
    offload = OrderedOffload(work, depth=2)
    await offload.submit(1)
    await offload.submit(2)
    await asyncio.to_thread(work.running.wait, 5)
    aborting = asyncio.ensure_future(offload.abort())
    await asyncio.sleep(0.05)
    assert not aborting.done()  # item 1 is still running: abort must not return before it ends
    work.release.set()
    await asyncio.wait_for(aborting, 5)
    assert work.finished == [1]  # item 2 was dropped, item 1 ran to its end before abort returned


async def test_a_cancelled_abort_still_waits_for_the_running_item() -> None:
    work = HeldWork()
    offload = OrderedOffload(work)
    await offload.submit(1)
    await asyncio.to_thread(work.running.wait, 5)
    aborting = asyncio.ensure_future(offload.abort())
    await asyncio.sleep(0.05)
    aborting.cancel()
    await asyncio.sleep(0.05)
    assert not aborting.done()
    work.release.set()
    with pytest.raises(asyncio.CancelledError):
        await aborting
    assert work.finished == [1]


async def test_no_thread_is_held_while_the_backlog_is_empty() -> None:
    """A slow client must not tie up an executor thread between its batches."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    offload = OrderedOffload(lambda item: None)
    await offload.submit(1)
    await asyncio.sleep(0.05)  # the client goes quiet before its next batch
    # the only executor thread is free for other work meanwhile
    assert await asyncio.wait_for(loop.run_in_executor(None, lambda: 42), 2) == 42
    await offload.submit(2)
    await offload.finish()
