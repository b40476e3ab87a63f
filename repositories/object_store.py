"""What the object-store adapters (S3, Azure) share: keys under a prefix, and one file and folder per name.

Local disk gets both from its file system; a bucket has neither, so `ObjectStoreRepository` maps
paths to keys and checks, before each commit, that no file and folder would share a name.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
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


FOLDER_MEMORY_S = 10.0
"""How long a folder this process wrote into is taken, without a HEAD, for a folder and not a file."""
MAX_KNOWN_FOLDERS = 10_000


class KnownFolders:
    """Folders this process committed an object into in the last `FOLDER_MEMORY_S`: no file has their name.

    Every upload would otherwise HEAD each of its parent folders (an MLflow run's artifact sits 3 or
    more folders deep), and small uploads to S3 then spent most of their requests on those HEADs.
    While a folder holds an object, no gateway writes a file of its name (its own check lists the
    folder first), so the answer can go stale only when every object below it is deleted and a file
    of its name written. This process forgets everything when it deletes anything and forgets a path
    it is about to write a file at; another process doing both within `FOLDER_MEMORY_S` is the race
    the check already admits (two uploads racing each other), made a few seconds wider.
    """

    def __init__(self, memory_s: float = FOLDER_MEMORY_S, limit: int = MAX_KNOWN_FOLDERS) -> None:
        self._memory_s = memory_s
        self._limit = limit
        self._seen: dict[ArtifactPath, float] = {}

    def holds(self, folder: ArtifactPath) -> bool:
        seen = self._seen.get(folder)
        return seen is not None and time.monotonic() - seen < self._memory_s

    def committed(self, path: ArtifactPath) -> None:
        """An object was committed at `path`: each of its parents is a folder now."""
        if len(self._seen) >= self._limit:
            self._seen.clear()
        now = time.monotonic()
        for parent in _parents(path):
            self._seen[parent] = now

    def forget(self, path: ArtifactPath | None = None) -> None:
        """Forget `path` (a file is about to be written there), or every folder (None: something was deleted)."""
        if path is None:
            self._seen.clear()
        else:
            self._seen.pop(path, None)


def _parents(path: ArtifactPath) -> list[ArtifactPath]:
    return [ArtifactPath(path.parts[:depth]) for depth in range(1, len(path.parts))]


class CollisionCheck:
    """Whether an object may be written at `path` without a file and a folder sharing a name.

    Local disk cannot hold a file and a directory of one name, and refuses the write (`Conflict`);
    an object store can (`fd/x` beside `fd/x/y.txt`), after which a listing shows the name twice and
    clients break. So the object stores check, started when an upload starts (one listing of `path/`
    and one HEAD per parent folder not in `known`, all at once, while the body arrives) and awaited
    just before the commit, and refuse with local disk's own `Conflict`. Two writes racing each
    other can still both pass: an object store has no atomic check across keys.
    """

    def __init__(
        self,
        path: ArtifactPath,
        is_directory: Callable[[ArtifactPath], Awaitable[bool]],
        is_file: Callable[[ArtifactPath], Awaitable[bool]],
        known: KnownFolders,
    ) -> None:
        known.forget(path)
        parents = [parent for parent in _parents(path) if not known.holds(parent)]
        self._task = asyncio.ensure_future(self._check(path, parents, is_directory, is_file))

    @staticmethod
    async def _check(
        path: ArtifactPath,
        parents: list[ArtifactPath],
        is_directory: Callable[[ArtifactPath], Awaitable[bool]],
        is_file: Callable[[ArtifactPath], Awaitable[bool]],
    ) -> None:
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

    def __init__(self) -> None:
        self.known_folders = KnownFolders()

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
            info = await self._put(path, body, expected, content_length, collisions)
        finally:
            await collisions.drop()
        self.known_folders.committed(path)
        return info

    async def delete(self, path: ArtifactPath) -> None:
        self.known_folders.forget()
        try:
            await self._delete(path)
        finally:
            self.known_folders.forget()  # and what uploads meanwhile committed

    def _collision_check(self, path: ArtifactPath) -> CollisionCheck:
        return CollisionCheck(path, self._is_directory, self._is_file, self.known_folders)

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
    async def _delete(self, path: ArtifactPath) -> None:
        """Delete the object or the whole tree at `path`; deleting nothing is not an error."""

    @abc.abstractmethod
    async def _is_file(self, path: ArtifactPath) -> bool:
        """Whether an object is stored at exactly `path`."""

    @abc.abstractmethod
    async def _is_directory(self, path: ArtifactPath) -> bool:
        """Whether any object is stored below `path/`."""
