"""What the object-store adapters (S3, Azure) share: keys under a prefix, and one file and folder per name.

Local disk gets both from its file system; a bucket has neither, so `ObjectStoreRepository` maps
paths to keys and checks, before each commit, that no file and folder would share a name.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from repositories.base import ArtifactRepository, ObjectInfo
from repositories.digests import ExpectedDigests
from repositories.errors import Conflict, InvalidPath
from repositories.paths import ArtifactPath


def object_key(prefix: str, path: ArtifactPath) -> str:
    """The storage key of `path` under `prefix` (no leading or doubled slashes)."""
    return "/".join(part for part in (prefix, str(path)) if part)


def directory_prefix(prefix: str, path: ArtifactPath) -> str:
    """The key prefix that lists the children of directory `path` ('' for the bucket root)."""
    key = object_key(prefix, path)
    return f"{key}/" if key else ""


class CollisionCheck:
    """Whether an object may be written at `path` without a file and a folder sharing a name.

    Local disk cannot hold a file and a directory of one name, and refuses the write (`Conflict`);
    an object store can (`fd/x` beside `fd/x/y.txt`), after which a listing shows the name twice and
    clients break. So the object stores check, started when an upload starts (one listing of `path/`
    and one HEAD per parent folder, all at once, while the body arrives) and awaited just before the
    commit, and refuse with local disk's own `Conflict`. Two writes racing each other can still both
    pass: an object store has no atomic check across keys.
    """

    def __init__(
        self,
        path: ArtifactPath,
        is_directory: Callable[[ArtifactPath], Awaitable[bool]],
        is_file: Callable[[ArtifactPath], Awaitable[bool]],
    ) -> None:
        self._task = asyncio.ensure_future(self._check(path, is_directory, is_file))

    @staticmethod
    async def _check(
        path: ArtifactPath,
        is_directory: Callable[[ArtifactPath], Awaitable[bool]],
        is_file: Callable[[ArtifactPath], Awaitable[bool]],
    ) -> None:
        parents = [ArtifactPath(path.parts[:depth]) for depth in range(1, len(path.parts))]
        folder, *files = await asyncio.gather(is_directory(path), *(is_file(parent) for parent in parents))
        if any(files):
            raise Conflict(f"A file is in the way of '{path}': a parent directory is an existing file")
        if folder:
            raise Conflict(f"'{path}' collides with an existing file or directory")

    async def passed(self) -> None:
        """Return when nothing collides; `Conflict` (or the storage's error) otherwise."""
        await asyncio.shield(self._task)

    async def drop(self) -> None:
        """End the check, whatever became of it (the upload failed, or committed)."""
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


class ObjectStoreRepository(ArtifactRepository):
    """An `ArtifactRepository` over flat keys under `prefix`; subclasses say how to write and probe."""

    prefix: str

    def key(self, path: ArtifactPath) -> str:
        return object_key(self.prefix, path)

    def _dir_prefix(self, path: ArtifactPath) -> str:
        return directory_prefix(self.prefix, path)

    async def put(
        self,
        path: ArtifactPath,
        body: AsyncIterator[bytes],
        *,
        expected: ExpectedDigests | None = None,
        content_length: int | None = None,
    ) -> ObjectInfo:
        if path.is_root:
            raise InvalidPath("", "an upload needs a file name")
        collisions = self._collision_check(path)
        try:
            return await self._put(path, body, expected, content_length, collisions)
        finally:
            await collisions.drop()

    def _collision_check(self, path: ArtifactPath) -> CollisionCheck:
        return CollisionCheck(path, self._is_directory, self._is_file)

    async def _check_no_collision(self, path: ArtifactPath) -> None:
        """`Conflict` if a file or folder is in the way of committing `path` (a multipart completion)."""
        collisions = self._collision_check(path)
        try:
            await collisions.passed()
        finally:
            await collisions.drop()

    @abc.abstractmethod
    async def _put(
        self,
        path: ArtifactPath,
        body: AsyncIterator[bytes],
        expected: ExpectedDigests | None,
        content_length: int | None,
        collisions: CollisionCheck,
    ) -> ObjectInfo:
        """Store `body` at `path` as `put` promises, awaiting `collisions.passed()` before the commit."""

    @abc.abstractmethod
    async def _is_file(self, path: ArtifactPath) -> bool:
        """Whether an object is stored at exactly `path`."""

    @abc.abstractmethod
    async def _is_directory(self, path: ArtifactPath) -> bool:
        """Whether any object is stored below `path/`."""
