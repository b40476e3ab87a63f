"""Blocking file-system calls, run in the event loop's default executor (through aiofiles)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

import aiofiles.os

from repositories.local.os_errors import os_error
from repositories.paths import ArtifactPath

T = TypeVar("T")


async def in_thread(func: Callable[..., T], *args: object) -> T:
    """Run `func` in aiofiles' executor; if cancelled, let the thread finish before unwinding.

    Waiting matters: cleanup after a cancel closes file descriptors the thread may still use.
    """
    task = asyncio.ensure_future(aiofiles.os.wrap(func)(*args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise


async def fs(path: ArtifactPath, func: Callable[..., T], *args: object) -> T:
    """`in_thread` for file-system work on `path`: an OSError becomes a repository error."""
    try:
        return await in_thread(func, *args)
    except OSError as exc:
        raise os_error(exc, path) from exc
