"""A folder of any size streamed as one zip or tar.gz archive, from any repository.

The folder is walked one listing level at a time (depth first, in listing order) and each file is
opened and read in chunks as it comes, so memory stays bounded whatever the folder's size, nothing
is staged on disk, and the first bytes leave before the last file has been listed. The writers are
synchronous byte producers; their per-chunk work (CRC-32 for zip, deflate for tar.gz) runs in a
worker thread, where zlib releases the GIL, so the event loop only moves bytes.

Entry names are relative to the archived folder, under one top directory named after it:
archiving `1/abc/artifacts/model` gives `model/`, `model/MLmodel`, `model/data/...`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import tarfile
import zipfile
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from gateway.logs import event
from repositories import ArtifactPath, ArtifactRepository, ListEntry
from repositories.errors import BackendError, InvalidPath, TooLarge

ROOT_NAME = "artifacts"
"""The top directory (and file name) of an archive of the whole artifact root."""
GZIP_LEVEL = 1
"""zlib level for tar.gz. Measured here: on text (CSV) level 1 deflates about 280 MiB/s to 17% of
its size against 60 MiB/s to 14% at the default 6; model weights barely compress at any level
(about 50 MiB/s), so a higher level costs CPU for nothing. Use zip for fast model downloads."""
FLUSH_BYTES = 256 * 1024
"""Archive bytes gathered before a write to the client: few small writes for folders of tiny files."""
_THREAD_MIN_BYTES = 16 * 1024
"""Chunks at least this big are processed in a worker thread; a smaller one costs the loop at most
about 0.3 ms (deflating incompressible bytes at level 1, the slowest case), less than a thread hop."""


class TooManyEntries(TooLarge):
    """The folder holds more entries than one archive may (`--max-archive-entries`)."""

    def __init__(self, folder: ArtifactPath, limit: int) -> None:
        where = "The artifact root" if folder.is_root else f"'{folder}'"
        super().__init__(
            f"{where} holds more than {limit} files and folders, the most one archive may hold "
            "(--max-archive-entries): archive a subfolder, or download the files one by one"
        )


async def count_entries(repository: ArtifactRepository, folder: ArtifactPath, limit: int) -> int:
    """The files and folders below `folder`, counted from listings only until the count passes `limit`.

    Listings never follow links (local disk leaves them out; object stores have none), so the count
    is of what an archive would hold, and a folder of links to links cannot blow it up.
    """
    count = 0
    pending = [folder]
    while pending and count <= limit:
        current = pending.pop()
        async with contextlib.aclosing(repository.list(current)) as listing:
            async for entry in listing:
                count += 1
                if count > limit:
                    break
                if entry.is_dir:
                    with contextlib.suppress(InvalidPath):  # the archive leaves such a name out
                        pending.append(current.child(entry.name))
    return count


class ArchiveWriter(abc.ABC):
    """Turns a sequence of entries into archive bytes, returning what each call produced.

    Calls must come one at a time, in order: `directory` or `start_file`, `data`..., `end_file`,
    and `finish` last. `data` may be CPU-heavy and is safe to call in a worker thread.
    """

    @abc.abstractmethod
    def directory(self, name: str, mtime: datetime) -> bytes:
        """A directory entry `name` (without the trailing '/')."""

    @abc.abstractmethod
    def start_file(self, name: str, size: int, mtime: datetime) -> bytes:
        """The header of a file of exactly `size` bytes."""

    @abc.abstractmethod
    def data(self, chunk: bytes) -> bytes:
        """The next bytes of the current file."""

    @abc.abstractmethod
    def end_file(self) -> bytes:
        """Close the current file."""

    @abc.abstractmethod
    def finish(self) -> bytes:
        """The archive's trailer; nothing may follow."""


class _Collector:
    """A write-only, non-seekable file that keeps what was written until `take`n."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        taken = b"".join(self._parts)
        self._parts.clear()
        return taken


def _dos_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    """UTC date and time for a zip entry; zip cannot say anything before 1980."""
    utc = moment.astimezone(UTC)
    if utc.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)


class ZipWriter(ArchiveWriter):
    """zip by Python's `zipfile` writing to a non-seekable sink: data descriptors after each file,
    ZIP64 records where a size, an offset or the entry count needs them, UTF-8 names flagged.

    Entries are STORED, not deflated: model weights and most binary artifacts do not compress, and
    deflating them would burn a core for nothing; a STORED zip costs only a CRC-32 per byte.
    The central directory (about 100 bytes per entry) is the only thing kept until the end.
    """

    def __init__(self) -> None:
        self._sink = _Collector()
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._file: IO[bytes] | None = None

    def directory(self, name: str, mtime: datetime) -> bytes:
        info = zipfile.ZipInfo(f"{name}/", _dos_time(mtime))
        info.external_attr = (0o40755 << 16) | 0x10  # a directory, rwxr-xr-x, and the MS-DOS directory bit
        info.CRC = info.compress_size = info.file_size = 0
        self._zip.mkdir(info)
        return self._sink.take()

    def start_file(self, name: str, size: int, mtime: datetime) -> bytes:
        info = zipfile.ZipInfo(name, _dos_time(mtime))
        info.external_attr = 0o100644 << 16
        info.file_size = size  # zipfile decides on ZIP64 from the announced size
        self._file = self._zip.open(info, "w")
        return self._sink.take()

    def data(self, chunk: bytes) -> bytes:
        assert self._file is not None
        self._file.write(chunk)
        return self._sink.take()

    def end_file(self) -> bytes:
        assert self._file is not None
        self._file.close()
        self._file = None
        return self._sink.take()

    def finish(self) -> bytes:
        self._zip.close()
        return self._sink.take()


class TarGzWriter(ArchiveWriter):
    """POSIX.1-2001 (PAX) tar, so long and non-ASCII names and files over 8 GiB are exact, deflated
    by zlib into one gzip member (wbits=31) at `GZIP_LEVEL`."""

    def __init__(self, level: int = GZIP_LEVEL) -> None:
        self._gzip = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._offset = 0  # uncompressed tar bytes so far
        self._remaining = 0  # bytes still due for the current file

    def _tar(self, raw: bytes) -> bytes:
        self._offset += len(raw)
        return self._gzip.compress(raw)

    def _header(self, info: tarfile.TarInfo, mtime: datetime) -> bytes:
        info.mtime = max(0, int(mtime.timestamp()))
        return self._tar(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def directory(self, name: str, mtime: datetime) -> bytes:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        return self._header(info, mtime)

    def start_file(self, name: str, size: int, mtime: datetime) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        self._remaining = size
        return self._header(info, mtime)

    def data(self, chunk: bytes) -> bytes:
        self._remaining -= len(chunk)
        return self._tar(chunk)

    def end_file(self) -> bytes:
        if self._remaining:
            raise ValueError(f"file ended {self._remaining} bytes away from its announced size")
        return self._tar(bytes(-self._offset % tarfile.BLOCKSIZE))

    def finish(self) -> bytes:
        end = self._tar(bytes(2 * tarfile.BLOCKSIZE))  # two zero blocks end a tar
        end += self._tar(bytes(-self._offset % tarfile.RECORDSIZE))  # whole records, as tar(1) writes
        return end + self._gzip.flush()


@dataclass(frozen=True, slots=True)
class ArchiveFormat:
    """One archive format the route offers."""

    name: str
    """The `format` query value and the file extension."""
    content_type: str
    writer: Callable[[], ArchiveWriter]


FORMATS: dict[str, ArchiveFormat] = {
    "zip": ArchiveFormat("zip", "application/zip", ZipWriter),
    "tar.gz": ArchiveFormat("tar.gz", "application/gzip", TarGzWriter),
}


async def _children(first: ListEntry, rest: AsyncIterator[ListEntry]) -> AsyncIterator[ListEntry]:
    yield first
    async for entry in rest:
        yield entry


class FolderArchive:
    """The archive of `folder`, whose listing the caller has already begun (to answer 404 before
    any byte when there is nothing to archive): `first` and the rest of `listing`.

    Iterate `chunks()` once. A storage error while it runs propagates as the repository raised it;
    the caller must then make sure the client does not take the bytes so far for a whole archive.
    """

    def __init__(
        self,
        repository: ArtifactRepository,
        folder: ArtifactPath,
        archive_format: ArchiveFormat,
        first: ListEntry,
        listing: AsyncIterator[ListEntry],
        max_entries: int = 0,
    ) -> None:
        self.repository = repository
        self.max_entries = max_entries
        """Entries (files and folders) allowed, 0 for any: the tree may grow after it was counted."""
        self.entries = 0
        self.folder = folder
        self.format = archive_format
        self.top = folder.name or ROOT_NAME
        self.files = 0
        """Files written so far."""
        self._children = _children(first, listing)
        self._started = datetime.now(UTC)

    @property
    def file_name(self) -> str:
        return f"{self.top}.{self.format.name}"

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The archive's bytes, in pieces of about `FLUSH_BYTES` (more when a file chunk is larger)."""
        writer = self.format.writer()
        pending: list[bytes] = [writer.directory(self.top, self._started)]
        size = len(pending[0])
        # aclosing at every level: closing this generator then closes the open download at once
        async with contextlib.aclosing(self._entries(writer, self.folder, self._children, self.top)) as pieces:
            async for piece in pieces:
                pending.append(piece)
                size += len(piece)
                if size >= FLUSH_BYTES:
                    yield b"".join(pending)
                    pending, size = [], 0
        pending.append(writer.finish())
        yield b"".join(pending)

    async def _entries(
        self, writer: ArchiveWriter, folder: ArtifactPath, children: AsyncIterator[ListEntry], prefix: str
    ) -> AsyncGenerator[bytes, None]:
        async for entry in children:
            try:
                path = folder.child(entry.name)
            except InvalidPath as exc:
                # Storage written around the gateway may hold names no client could extract safely
                # (`..`, backslashes): leave them out rather than ship a zip-slip.
                event("archive skips an unsafe name", logging.WARNING, folder=str(folder), reason=exc.reason)
                continue
            name = f"{prefix}/{entry.name}"
            self.entries += 1
            if self.max_entries and self.entries > self.max_entries:
                raise TooManyEntries(self.folder, self.max_entries)
            if entry.is_dir:
                yield writer.directory(name, self._started)
                async with (
                    contextlib.aclosing(self.repository.list(path)) as listing,
                    contextlib.aclosing(self._entries(writer, path, listing, name)) as deeper,
                ):
                    async for piece in deeper:
                        yield piece
            else:
                async with contextlib.aclosing(self._file(writer, path, name)) as pieces:
                    async for piece in pieces:
                        yield piece

    async def _file(self, writer: ArchiveWriter, path: ArtifactPath, name: str) -> AsyncGenerator[bytes, None]:
        async with await self.repository.get(path) as download:
            info = download.info  # the size of what is read, not of what was listed a moment ago
            yield writer.start_file(name, info.size, info.last_modified)
            read = 0
            async for chunk in download.iter_range(0, info.size):
                read += len(chunk)
                if len(chunk) >= _THREAD_MIN_BYTES:
                    yield await asyncio.to_thread(writer.data, chunk)
                else:
                    yield writer.data(chunk)
            if read != info.size:
                raise BackendError(f"'{path}' ended after {read} of {info.size} bytes while being archived")
            yield writer.end_file()
        self.files += 1
