"""Shared by the object-store adapters: cutting a body into parts and sending them with back-pressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from repositories.digests import DigestAccumulator
from repositories.errors import TooLarge
from repositories.paths import ArtifactPath


def object_key(prefix: str, path: ArtifactPath) -> str:
    """The storage key of `path` under `prefix` (no leading or doubled slashes)."""
    return "/".join(part for part in (prefix, str(path)) if part)


def directory_prefix(prefix: str, path: ArtifactPath) -> str:
    """The key prefix that lists the children of directory `path` ('' for the bucket root)."""
    key = object_key(prefix, path)
    return f"{key}/" if key else ""


def part_size_for(configured: int, content_length: int | None, max_parts: int) -> int:
    """The configured part size, grown when a declared length would need more than `max_parts`."""
    if content_length is None:
        return configured
    return max(configured, -(-content_length // max_parts))


async def split_into_parts(body: AsyncIterator[bytes], part_size: int) -> AsyncIterator[bytearray]:
    """Re-chunk `body` into `part_size` pieces; the last may be shorter, an empty body is one empty part.

    Each byte is copied once, into a part buffer that is then handed over whole: the SDKs send a
    bytearray as it is, so a part is never held twice.
    """
    part = bytearray(part_size)
    filled = 0
    yielded = False
    async for chunk in body:
        view = memoryview(chunk)
        while view:
            taken = min(len(view), part_size - filled)
            part[filled : filled + taken] = view[:taken]
            filled += taken
            view = view[taken:]
            if filled == part_size:
                yielded = True
                yield part
                part, filled = bytearray(part_size), 0
    if filled or not yielded:
        del part[filled:]
        yield part


async def first_part_if_only(
    parts: AsyncIterator[bytearray],
) -> tuple[bytearray | None, AsyncIterator[bytearray]]:
    """(the only part, ...) when `parts` holds one part; else (None, all the parts) to stream on."""
    first = await anext(parts)
    second = await anext(parts, None)
    if second is None:
        return first, parts

    async def again() -> AsyncIterator[bytearray]:
        yield first
        yield second
        async for part in parts:
            yield part

    return None, again()


async def send_parts(
    parts: AsyncIterator[bytearray],
    digests: DigestAccumulator,
    send: Callable[[int, bytearray], Awaitable[None]],
    *,
    max_in_flight: int,
    max_parts: int,
) -> int:
    """Hash each part (off the loop) and `send(number, data)` it, at most `max_in_flight` at once.

    Memory stays within (max_in_flight + 1) parts. The first failure cancels the other sends and
    is raised as itself (not as an ExceptionGroup); the caller aborts the upload. Returns the count.
    """
    in_flight = asyncio.Semaphore(max_in_flight)

    async def send_one(number: int, data: bytearray) -> None:
        try:
            await send(number, data)
        finally:
            in_flight.release()

    number = 0
    try:
        async with asyncio.TaskGroup() as group:
            async for data in parts:
                number += 1
                if number > max_parts:
                    raise TooLarge(f"the object needs more than {max_parts} parts; send a Content-Length")
                await asyncio.to_thread(digests.update, data)
                await in_flight.acquire()
                group.create_task(send_one(number, data))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return number


async def read_part(body: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole part in memory (object stores need its length up front), refusing more than `limit`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"a proxied part may hold at most {limit >> 20} MiB; use smaller parts")
        chunks.append(chunk)
    return b"".join(chunks)
