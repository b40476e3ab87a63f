"""One error family for every repository, after Rust object_store's error enum.

The gateway maps each kind to one HTTP status and MLflow error code; adapters translate their
SDK's exceptions into these and never let a raw SDK error escape.
"""

from __future__ import annotations


class RepositoryError(Exception):
    """Base of every error a repository raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RepositoryError):
    """No object (or directory) at the path."""

    def __init__(self, path: object) -> None:
        super().__init__(f"No such artifact: '{path}'")
        self.path = str(path)


class InvalidPath(RepositoryError):
    """The path text is not an acceptable artifact path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"Invalid path: {reason}")
        self.path = path
        self.reason = reason


class Conflict(RepositoryError):
    """The path collides with what exists: a directory where a file is wanted, or the reverse."""


class ConcurrentWrite(RepositoryError):
    """Another write of the same object got in the way of this one; nothing of it was stored, and
    sending it again is the remedy (an answer clients retry, unlike `Conflict`)."""


class AlreadyExists(RepositoryError):
    """A conditional write found an object already there."""


class ChecksumMismatch(RepositoryError):
    """The bytes received do not match the digest the client sent; nothing was stored."""


class IncompleteBody(RepositoryError):
    """The request body ended before its declared length; nothing was stored."""


class TooLarge(RepositoryError):
    """The object exceeds what the backend can store in one upload; nothing was stored."""


class PermissionDenied(RepositoryError):
    """The backend refused the operation for lack of rights."""


class StorageFull(RepositoryError):
    """The backend has no room left for the object; nothing was stored."""


class NotSupported(RepositoryError):
    """The backend cannot do this operation (e.g. presigned URLs on local disk)."""


class BackendError(RepositoryError):
    """The backend failed in a way the client cannot fix; carries the backend's request id."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id
