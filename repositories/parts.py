"""Shared by the object-store adapters: cutting a body into parts and sending them with back-pressure."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable

from repositories.digests import DigestAccumulator
from repositories.errors import TooLarge


def part_size_for(configured: int, content_length: int | None, max_parts: int) -> int:
    """The configured part size, grown when a declared length would need more than `max_parts`."""
    if content_length is None:
        return configured
    return max(configured, -(-content_length // max_parts))


class Part(io.BytesIO):
    """One part of an upload: a buffer filled, then read by the SDK as a file, then refilled.

    The SDKs send a file-like body in small slices, so the socket layer never holds a second
    copy of the part (a bytes body would be copied whole into the transport's buffer). The buffer
    grows with its first fill (a small upload stays small) and keeps its size when refilled.
    """

    def __len__(self) -> int:
        with self.getbuffer() as view:
            return view.nbytes


class PartBuffers:
    """The part buffers of one upload: at most `count` of `size` bytes, reused part after part.

    An upload thus allocates its memory once, however many parts it has, and frees it when the
    upload (the only holder of this object) ends.
    """

    def __init__(self, size: int, count: int) -> None:
        self.size = size
        self._count = count
        self._made = 0
        self._free: asyncio.Queue[Part] = asyncio.Queue()

    async def take(self) -> Part:
        """A buffer positioned at its start; waits for one to be given back when all are out."""
        if self._free.empty() and self._made < self._count:
            self._made += 1
            return Part()
        part = await self._free.get()
        part.seek(0)
        return part

    def give_back(self, part: Part) -> None:
        self._free.put_nowait(part)


async def split_into_parts(body: AsyncIterator[bytes], buffers: PartBuffers) -> AsyncIterator[Part]:
    """Re-chunk `body` into parts of `buffers.size`; the last may be shorter, an empty body is one empty part.

    Each byte is copied once, into its part; each part comes out positioned at its start. The
    consumer gives each part back to `buffers` once it has been sent.
    """
    part_size = buffers.size
    part, filled = await buffers.take(), 0
    yielded = False
    async for chunk in body:
        view = memoryview(chunk)
        while view:
            taken = min(len(view), part_size - filled)
            part.write(view[:taken])
            filled += taken
            view = view[taken:]
            if filled == part_size:
                yielded = True
                part.seek(0)
                yield part
                part, filled = await buffers.take(), 0
    if filled or not yielded:
        part.truncate(filled)
        part.seek(0)
        yield part


async def first_part_if_only(
    parts: AsyncIterator[Part],
) -> tuple[Part | None, AsyncIterator[Part]]:
    """(the only part, ...) when `parts` holds one part; else (None, all the parts) to stream on."""
    first = await anext(parts)
    second = await anext(parts, None)
    if second is None:
        return first, parts

    async def again() -> AsyncIterator[Part]:
        yield first
        yield second
        async for part in parts:
            yield part

    return None, again()


async def send_parts(
    parts: AsyncIterator[Part],
    buffers: PartBuffers,
    digests: DigestAccumulator | None,
    send: Callable[[int, Part], Awaitable[None]],
    *,
    max_in_flight: int,
    max_parts: int,
) -> int:
    """Hash each part into `digests` if given (off the loop) and `send(number, data)` it, at most
    `max_in_flight` at once.

    Each part goes back to `buffers` once sent: with `max_in_flight + 1` buffers (one filling, the
    rest sending) the upload never waits on memory it does not need. The first failure cancels the other sends and
    is raised as itself (not as an ExceptionGroup); the caller aborts the upload. Returns the count.
    """
    in_flight = asyncio.Semaphore(max_in_flight)

    async def send_one(number: int, data: Part) -> None:
        try:
            await send(number, data)
        finally:
            in_flight.release()
            buffers.give_back(data)

    number = 0
    try:
        async with asyncio.TaskGroup() as group:
            async for data in parts:
                number += 1
                if number > max_parts:
                    raise TooLarge(f"the object needs more than {max_parts} parts; send a Content-Length")
                if digests is not None:
                    await asyncio.to_thread(hash_part, digests, data)
                await in_flight.acquire()
                group.create_task(send_one(number, data))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return number


def hash_part(digests: DigestAccumulator, part: Part) -> None:
    """Feed `part` to `digests` without copying it (blocking: run it in a thread)."""
    with part.getbuffer() as view:
        digests.update(view)


async def read_part(body: AsyncIterator[bytes], limit: int) -> Part:
    """The whole part in memory (object stores need its length up front), refusing more than `limit`."""
    part = Part()
    async for chunk in body:
        if part.tell() + len(chunk) > limit:
            raise TooLarge(f"a proxied part may hold at most {limit >> 20} MiB; use smaller parts")
        part.write(chunk)
    part.seek(0)
    return part
