"""Turn an `--artifacts-destination` URI into a repository."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from repositories.base import ArtifactRepository
from repositories.errors import NotSupported
from repositories.local import LocalRepository


def open_repository(destination: str, *, fsync: bool = True) -> ArtifactRepository:
    """Open the repository for `destination`: a directory path or a `file:` URI.

    Raises `NotSupported` for schemes this build cannot serve, `PermissionDenied` when the
    directory cannot be created or written.
    """
    scheme = urlsplit(destination).scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and destination[1:2] == ":"):
        path = unquote(urlsplit(destination).path) if scheme == "file" else destination
        return LocalRepository.open(path, fsync=fsync)
    raise NotSupported(
        f"artifacts destination scheme '{scheme}://' is not supported; use a local directory or a file: URI"
    )
