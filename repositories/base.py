"""The repository interface every storage adapter implements, and the values it exchanges.

Shaped after Rust object_store: a small set of async operations on validated paths, atomic puts,
reads that report what they read, one-level listings in name order, and one error family
(`repositories.errors`). Nothing here knows about HTTP.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from repositories.digests import ExpectedDigests
from repositories.errors import InvalidPath, NotSupported
from repositories.paths import ArtifactPath

_log = logging.getLogger("repositories")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What is known about one stored object."""

    path: ArtifactPath
    size: int
    last_modified: datetime
    etag: str
    """Opaque strong validator, without quotes; changes whenever the content may have changed."""
    sha256: str | None = None
    """Hex SHA-256 of the whole object, when the backend knows it."""


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One direct child of a listed directory."""

    name: str
    is_dir: bool
    size: int | None = None

    @property
    def sort_key(self) -> str:
        """Listing order: storage key order, in which a directory sorts as its name plus '/'."""
        return f"{self.name}/" if self.is_dir else self.name


class UnusableNames:
    """The names one listing leaves out because no client could use them, and one warning about them.

    Storage written around the gateway may hold names the gateway itself refuses (`ArtifactPath`):
    `%2e%2e%2fevil.txt` (a client decodes it again into `../evil.txt`), `a#b?c.txt` (URL delimiters),
    control characters, `..`. Listed, such a name broke the stock client's download of the whole
    folder; every adapter's listing leaves them out and logs how many, with one example, once.
    """

    def __init__(self, kind: str, folder: ArtifactPath) -> None:
        self.kind = kind
        self.folder = folder
        self.count = 0
        self.example: tuple[str, str] | None = None

    def usable(self, name: str) -> bool:
        try:
            self.folder.child(name)
        except InvalidPath as exc:
            self.count += 1
            self.example = self.example or (name, exc.reason)
            return False
        return True

    def report(self) -> None:
        if self.count and self.example is not None:
            name, reason = self.example
            fields = {"backend": self.kind, "folder": str(self.folder), "left_out": self.count}
            fields |= {"example": repr(name)[:300], "reason": reason}
            _log.warning("listing leaves out names no client could use", extra={"fields": fields})


@dataclass(frozen=True, slots=True)
class PresignedRequest:
    """A URL (plus headers to send with it) that reaches the storage directly, for a limited time."""

    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class UploadedPart:
    number: int
    etag: str


class Download(abc.ABC):
    """An object opened for reading: its info now, its bytes on demand.

    Opening first and streaming second lets the HTTP layer answer conditional and range requests
    from `info` before a byte moves. Always `aclose()` it (or use `async with`).
    """

    info: ObjectInfo

    @abc.abstractmethod
    def iter_range(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """Yield `length` bytes starting at `offset`, in chunks of bounded size."""

    @property
    def file(self) -> BinaryIO | None:
        """An open file positioned anywhere, for zero-copy `sendfile`; None when not on disk."""
        return None

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the file handle or connection."""

    async def __aenter__(self) -> Download:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class BytesDownload(Download):
    """A small object read whole when opened: no handle or connection left to hold or close."""

    def __init__(self, data: bytes, info: ObjectInfo) -> None:
        self._data = data
        self.info = info

    async def iter_range(self, offset: int, length: int) -> AsyncIterator[bytes]:
        if length:
            yield self._data[offset : offset + length]

    async def aclose(self) -> None:
        pass


class ArtifactRepository(abc.ABC):
    """Storage for artifact bytes under one root (a directory, bucket prefix or container)."""

    kind: str
    """Short backend name for logs and metrics: 'local', 's3', 'azure'."""

    @abc.abstractmethod
    async def put(
        self,
        path: ArtifactPath,
        body: AsyncIterator[bytes],
        *,
        expected: ExpectedDigests | None = None,
        content_length: int | None = None,
    ) -> ObjectInfo:
        """Store `body` at `path` atomically: the object appears whole or not at all.

        `content_length`, when the client declared one, lets a backend size its parts.

        Overwrites an existing object. Raises `ChecksumMismatch` (nothing stored) when `expected`
        does not match, `Conflict` when a directory or a file is in the way. If `body` raises,
        nothing is stored and the exception propagates.
        """

    @abc.abstractmethod
    async def get(self, path: ArtifactPath) -> Download:
        """Open the object at `path`; `NotFound` if absent, `Conflict` if it is a directory."""

    @abc.abstractmethod
    async def head(self, path: ArtifactPath) -> ObjectInfo:
        """Describe the object at `path`; same errors as `get`."""

    @abc.abstractmethod
    def list(self, path: ArtifactPath, *, start_after: str | None = None) -> AsyncGenerator[ListEntry, None]:
        """Yield the direct children of directory `path` in `ListEntry.sort_key` order.

        Only entries whose sort key is greater than `start_after` are yielded, so a page token can
        carry the last sort key seen. Yields nothing when `path` is missing or names a file. A caller
        that stops early closes the listing (`contextlib.aclosing`), which may hold a connection.
        """

    @abc.abstractmethod
    async def delete(self, path: ArtifactPath) -> None:
        """Delete the object or the whole tree at `path`; deleting nothing is not an error."""

    # -- multipart uploads: the state lives in the backend, so any worker or replica can finish one --

    @abc.abstractmethod
    async def create_multipart(self, path: ArtifactPath, *, num_parts: int | None = None) -> str:
        """Begin a multipart upload to `path`; return its upload id.

        `num_parts`: how many parts the client announced (MLflow's `mpu/create` sends it), if it did;
        an adapter may use it to lay the parts out (local disk writes each at its final offset).
        """

    @abc.abstractmethod
    async def put_part(
        self, path: ArtifactPath, upload_id: str, number: int, body: AsyncIterator[bytes], *, content_length: int | None
    ) -> str:
        """Store part `number` (1-based) of the upload; return its ETag. Re-sending a part replaces it."""

    @abc.abstractmethod
    async def multipart_size(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> int:
        """The bytes that completing with `parts` would store: the sum of those parts as stored now.

        Same errors as `complete_multipart` for an unknown upload or a missing part; changes nothing.
        """

    @abc.abstractmethod
    async def complete_multipart(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> ObjectInfo:
        """Assemble the listed parts, in number order, into the object; it appears whole or not at all.

        `NotFound` for an unknown upload, `Conflict` when a part is missing or its ETag differs.
        """

    @abc.abstractmethod
    async def abort_multipart(self, path: ArtifactPath, upload_id: str) -> None:
        """Discard the upload and its parts; aborting an unknown upload is not an error."""

    async def presign_part(self, path: ArtifactPath, upload_id: str, number: int, expires_s: int) -> PresignedRequest:
        """A URL through which a client sends part `number` straight to the storage."""
        raise NotSupported(f"{self.kind} storage cannot presign upload parts")

    async def presign_get(self, path: ArtifactPath, expires_s: int) -> PresignedRequest:
        """A URL through which a client reads the object straight from the storage."""
        raise NotSupported(f"{self.kind} storage cannot presign downloads")

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients; called once in the event loop that will use the repository."""

    async def check(self) -> None:  # noqa: B027 - optional hook
        """Prove the destination is reachable and usable; raise a `RepositoryError` saying why not."""

    async def sweep_abandoned(self, older_than_s: float) -> int:
        """Remove debris of uploads untouched for `older_than_s` (after a crash); return the count."""
        return 0

    async def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release clients and background tasks."""

    @property
    def can_presign(self) -> bool:
        """Whether `presign_part` and `presign_get` work with the configured credentials."""
        return False
