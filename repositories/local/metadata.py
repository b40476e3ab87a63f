"""What is known of a stored file: its `ObjectInfo` from a stat, and the SHA-256 kept in an xattr."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from repositories.base import ObjectInfo
from repositories.paths import ArtifactPath

_SHA256_XATTR = "user.artifact_gateway.sha256"


def record_sha256(fd: int, sha256: str, st: os.stat_result) -> None:
    """Remember the digest beside the bytes; tied to size and mtime so edits invalidate it."""
    with contextlib.suppress(OSError):  # file systems without user xattrs just lose the digest
        os.setxattr(fd, _SHA256_XATTR, f"{sha256}:{st.st_size}:{st.st_mtime_ns}".encode())


def recorded_sha256(fd_or_path: int | Path, st: os.stat_result) -> str | None:
    """The digest `record_sha256` kept, unless the file's size or mtime changed since."""
    try:
        raw = os.getxattr(fd_or_path, _SHA256_XATTR).decode()
    except OSError:
        return None
    sha256, _, rest = raw.partition(":")
    return sha256 if rest == f"{st.st_size}:{st.st_mtime_ns}" else None


def object_info(path: ArtifactPath, st: os.stat_result, sha256: str | None) -> ObjectInfo:
    return ObjectInfo(
        path=path,
        size=st.st_size,
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        # From the file, not its digest: a digest recorded after the upload must not change the ETag.
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
        sha256=sha256,
    )
