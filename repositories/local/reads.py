"""Reads: a file opened for a download (read whole when small, else sendfile-ready), and HEAD's answer."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from repositories.base import BytesDownload, Download, ObjectInfo
from repositories.errors import Conflict, NotFound
from repositories.local.fs_paths import require_inside
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


def open_for_read(root: Path, fs_path: Path, path: ArtifactPath) -> Download:
    """The download of the regular file at `fs_path`: its bytes when small, else the open file."""
    try:
        require_inside(root, fs_path, path)
        # O_NONBLOCK: opening a FIFO someone planted must not hang a thread.
        fd = os.open(fs_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(path) from None
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


def head_info(root: Path, fs_path: Path, path: ArtifactPath) -> ObjectInfo:
    """The info of the regular file at `fs_path`, without opening it."""
    try:
        require_inside(root, fs_path, path)
        st = os.stat(fs_path)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(path) from None
    _require_regular_file(st, path)
    return object_info(path, st, recorded_sha256(fs_path, st))


def _require_regular_file(st: os.stat_result, path: ArtifactPath) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise Conflict(f"Artifact path refers to a directory, not a file: '{path}'")
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(path)
