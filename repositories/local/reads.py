"""Reads: a file opened for a download (read whole when small, else sendfile-ready), and HEAD's answer.

Both reach the file through `fs_paths` (each directory opened relative to the one above, the file
relative to its directory, no link followed), and describe what they opened (`fstat`), not a name.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from repositories.base import BytesDownload, Download, ObjectInfo
from repositories.errors import Conflict, NotFound
from repositories.local.fs_paths import FILE_FLAGS, lstat_at, parent_dir, symlink_refused
from repositories.local.metadata import object_info, recorded_sha256
from repositories.local.threads import in_thread
from repositories.paths import ArtifactPath

READ_CHUNK_BYTES = 1 << 20
READ_WHOLE_BYTES = 64 << 10
"""Files up to this size are read when opened: one thread hop per download instead of three."""


class LocalDownload(Download):
    """An open regular file."""

    def __init__(self, file: BinaryIO, info: ObjectInfo) -> None:
        self._file = file
        self.info = info

    @property
    def file(self) -> BinaryIO:
        return self._file

    async def iter_range(self, offset: int, length: int) -> AsyncIterator[bytes]:
        fd = self._file.fileno()
        end = offset + length
        while offset < end:
            chunk = await in_thread(os.pread, fd, min(READ_CHUNK_BYTES, end - offset), offset)
            if not chunk:  # truncated under us: stop short, the client sees a short body
                return
            offset += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        if not self._file.closed:
            await in_thread(self._file.close)


def _open_file(root: Path, path: ArtifactPath) -> int:
    """The regular file at `path`, opened read-only: never through a link, a directory or a FIFO."""
    if path.is_root:
        raise Conflict("Artifact path refers to a directory, not a file: ''")
    try:
        with parent_dir(root, path) as dir_fd:
            # Look before opening, so a device or FIFO is never opened; the open below refuses a
            # link swapped in meanwhile (O_NOFOLLOW), and the caller checks what it opened.
            _require_regular_file(lstat_at(dir_fd, path.name), path)
            return os.open(path.name, FILE_FLAGS, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link swapped in after the look
            raise symlink_refused(path) from None
        raise


def open_for_read(root: Path, path: ArtifactPath) -> Download:
    """The download of the regular file at `path`: its bytes when small, else the open file."""
    fd = _open_file(root, path)
    try:
        st = os.fstat(fd)
        _require_regular_file(st, path)
        info = object_info(path, st, recorded_sha256(fd, st))
        # Truncated meanwhile: shorter than `info.size`, as a client would see from sendfile.
        data = os.pread(fd, st.st_size, 0) if st.st_size <= READ_WHOLE_BYTES else None
    except BaseException:
        os.close(fd)
        raise
    if data is not None:
        os.close(fd)
        return BytesDownload(data, info)
    return LocalDownload(os.fdopen(fd, "rb", buffering=0), info)


def head_info(root: Path, path: ArtifactPath) -> ObjectInfo:
    """The info of the regular file at `path`, from the file itself (its stat and digest xattr)."""
    fd = _open_file(root, path)
    try:
        st = os.fstat(fd)
        _require_regular_file(st, path)
        return object_info(path, st, recorded_sha256(fd, st))
    finally:
        os.close(fd)


def _require_regular_file(st: os.stat_result, path: ArtifactPath) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise symlink_refused(path)
    if stat.S_ISDIR(st.st_mode):
        raise Conflict(f"Artifact path refers to a directory, not a file: '{path}'")
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(path)
