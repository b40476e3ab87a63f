"""OSError from the local file system → the repository error family."""

from __future__ import annotations

import errno

from repositories.errors import (
    BackendError,
    Conflict,
    InvalidPath,
    NotFound,
    PermissionDenied,
    RepositoryError,
    StorageFull,
    TooLarge,
)
from repositories.paths import ArtifactPath


def os_error(exc: OSError, path: ArtifactPath) -> RepositoryError:
    """Translate an OSError into the repository error family."""
    if exc.errno == errno.ENOSPC:
        return StorageFull(
            f"The artifact destination is full (no space left on its device); '{path}' was not stored. "
            "Free space on the server's artifact storage, then retry."
        )
    if exc.errno == errno.EDQUOT:
        return StorageFull(
            f"The artifact destination's disk quota is used up; '{path}' was not stored. "
            "Free space or raise the quota of the server's artifact storage, then retry."
        )
    if exc.errno == errno.EFBIG:  # the file system's (or RLIMIT_FSIZE's) largest file, not a full disk
        return TooLarge(f"'{path}' is larger than the artifact destination's file system allows; nothing was stored")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"The artifact destination refused access to '{path}'")
    if exc.errno in (errno.ENOENT,):
        return NotFound(path)
    if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY):
        return Conflict(f"'{path}' collides with an existing file or directory")
    if exc.errno == errno.ENAMETOOLONG:
        return InvalidPath(str(path), "name too long for the file system")
    return BackendError(f"Local file system error on '{path}': {exc.strerror or exc}")
