"""Turn an `--artifacts-destination` URI into a repository."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from repositories.base import ArtifactRepository
from repositories.errors import NotSupported
from repositories.local import LocalRepository
from repositories.options import AzureOptions, S3Options

_WASBS = re.compile(r"^wasbs?://(?P<container>[^@/]+)@(?P<host>[^/]+)(?:/(?P<prefix>.*))?$")


@dataclass(frozen=True, slots=True)
class RepositoryOptions:
    fsync: bool = True
    s3: S3Options = field(default_factory=S3Options)
    azure: AzureOptions = field(default_factory=AzureOptions)


def open_repository(destination: str, options: RepositoryOptions | None = None) -> ArtifactRepository:
    """The repository for `destination`: a directory or `file:` URI, `s3://bucket/prefix`, or
    `wasbs://container@account.blob.core.windows.net/prefix`. Call `start()` before use.

    Raises `NotSupported` for other schemes, `PermissionDenied` for an unusable local directory.
    """
    options = options or RepositoryOptions()
    parts = urlsplit(destination)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and destination[1:2] == ":"):
        path = unquote(parts.path) if scheme == "file" else destination
        return LocalRepository.open(path, fsync=options.fsync)
    if scheme in ("s3", "s3a"):
        if not parts.netloc:
            raise NotSupported(f"'{destination}' names no bucket; use s3://bucket/prefix")
        from repositories.s3 import S3Repository  # imported on demand: the SDK costs memory in every worker

        return S3Repository(parts.netloc, parts.path, options.s3)
    if scheme in ("wasbs", "wasb"):
        match = _WASBS.match(destination)
        if match is None:
            raise NotSupported(f"'{destination}' is not wasbs://container@account.blob.core.windows.net/prefix")
        from repositories.azure import AzureRepository  # imported on demand, like the S3 adapter

        return AzureRepository(match["container"], match["host"], match["prefix"] or "", options.azure)
    raise NotSupported(
        f"artifacts destination scheme '{scheme}://' is not supported; use a directory, file:, s3:// or wasbs://"
    )
