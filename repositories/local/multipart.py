"""Multipart uploads on disk: `<staging>/mpu/<upload id>/` holds one upload's state and bytes.

- `upload.json`: the object's path, when the upload began, the number of parts the client announced;
- `data`: the object being assembled. A part whose place the layout predicts is written straight at
  its final offset, `(number - 1) x part size`: every part but the last has the client's part size
  (MLflow's client, boto3 and S3 itself work so), so completing such an upload is a truncate, an
  fsync and a rename, with no byte copied;
- `part-size`: a symlink whose target is that part size, made (atomically, once) by the first part
  that is not the last;
- `NNNNN.region`: part NNNNN's range of `data` is being written or was; made exclusively and kept,
  so a range is written by one try only and a retry goes beside it instead of over bytes a record
  names;
- `NNNNN.<sha256>.<size>.at`: the record of a part whose bytes are in its range of `data`;
- `NNNNN.<sha256>.part`: a part in a file of its own (a part of another size, a retry, a last part
  that came before the part size was known, a part of an upload whose part count is unknown).

A part writer holds a shared `flock` on `data` from before it writes until its record is kept; a
completion takes it exclusively (without waiting) before it reads the records, so what it links
into place cannot be written again, by any worker. When the lock is taken or the parts do not fit
the layout, the completion copies the listed parts into a new file instead, as it always did.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repositories.base import UploadedPart
from repositories.digests import DigestAccumulator
from repositories.errors import Conflict, IncompleteBody, NotFound
from repositories.libc import libc_function
from repositories.local.staging import Staged, name_in_staging, refuse_without_room
from repositories.local.streaming import WRITE_BATCH_BYTES, write_batch
from repositories.paths import ArtifactPath

MULTIPART_DIR_NAME = "mpu"
DATA_NAME = "data"
PART_SIZE_NAME = "part-size"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_RECORD = re.compile(r"^(\d{5})\.([0-9a-f]{64})\.(?:(\d+)\.at|part)$")
_REGION = re.compile(r"^(\d{5})\.region$")


def upload_dir(staging_dir: Path, upload_id: str) -> Path:
    """The directory of upload `upload_id`; `NotFound` for an id this adapter cannot have made."""
    if not _UPLOAD_ID.match(upload_id):
        raise NotFound(f"upload {upload_id[:64]}")
    return staging_dir / MULTIPART_DIR_NAME / upload_id


def create_upload_dir(directory: Path, path: ArtifactPath, num_parts: int | None) -> None:
    directory.mkdir(parents=True)
    try:
        state = {"path": str(path), "created": time.time(), "num_parts": num_parts}
        (directory / "upload.json").write_text(json.dumps(state))
        os.close(os.open(directory / DATA_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
    except BaseException:  # a full disk: leave no half-made upload behind
        shutil.rmtree(directory, ignore_errors=True)
        raise


def require_upload(directory: Path, path: ArtifactPath) -> int | None:
    """The part count announced for the upload in `directory` (None: not announced).

    `NotFound` unless `directory` holds an upload started for `path`.
    """
    try:
        state = json.loads((directory / "upload.json").read_text())
        recorded = state["path"]
    except (OSError, ValueError, KeyError, TypeError):
        raise NotFound(f"upload {directory.name}") from None
    if recorded != str(path):
        raise NotFound(f"upload {directory.name} for '{path}'")
    num_parts = state.get("num_parts")
    return num_parts if isinstance(num_parts, int) and num_parts > 0 else None


def _part_size(directory: Path) -> int | None:
    try:
        return int(os.readlink(directory / PART_SIZE_NAME))
    except FileNotFoundError:
        return None


def _settle_part_size(directory: Path, size: int) -> int:
    """The upload's part size: `size` if this call sets it, else the one an earlier part set."""
    try:
        os.symlink(str(size), directory / PART_SIZE_NAME)  # atomic: one part, of any worker, sets it
        return size
    except FileExistsError:
        settled = _part_size(directory)
        assert settled is not None
        return settled


def _region_offset(directory: Path, number: int, size: int | None, num_parts: int | None) -> int | None:
    """Where part `number` of `size` bytes goes in `data`, or None when its place is not known."""
    if num_parts is None or size is None or number > num_parts:
        return None
    if number == 1 and num_parts == 1:
        return 0
    if number < num_parts:  # every part but the last has the part size
        settled = _settle_part_size(directory, size)
        return (number - 1) * settled if size == settled else None
    part_size = _part_size(directory)  # the last part: no larger than the others
    if part_size is None or size > part_size:
        return None
    return (number - 1) * part_size


@contextlib.contextmanager
def _shared_lock(directory: Path) -> Iterator[int]:
    """`data` open and locked shared while records change; `Conflict` when a completion holds it."""
    try:
        fd = os.open(directory / DATA_NAME, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"upload {directory.name}") from None
    try:
        _lock_shared(fd, directory)
        yield fd
    finally:
        os.close(fd)


def _lock_shared(fd: int, directory: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Conflict(f"upload {directory.name} is being completed") from None
    try:  # completed between the open and the lock: `data` is the object now, not this upload's
        same = os.stat(directory / DATA_NAME).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        raise NotFound(f"upload {directory.name}")


def open_region(
    directory: Path, path: ArtifactPath, number: int, size: int | None, *, writeback: bool
) -> Staged | None:
    """Part `number` opened for writing at its place in `data`, or None: it goes in a file of its own.

    The region is claimed (`NNNNN.region`) for this try; the returned file holds the shared lock.
    """
    offset = _region_offset(directory, number, size, require_upload(directory, path))
    if offset is None or size is None:
        return None
    fd = os.open(directory / DATA_NAME, os.O_WRONLY | os.O_CLOEXEC)
    staged = Staged(fd, None, DigestAccumulator(), base=offset, early_writeback=writeback)
    try:
        _lock_shared(fd, directory)
        refuse_without_room(staged, size, f"part {number} of '{path}'")
        try:
            os.close(os.open(directory / f"{number:05d}.region", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC))
        except FileExistsError:  # written before (a retry) or being written: this try goes beside
            staged.close()
            return None
        os.lseek(fd, offset, os.SEEK_SET)
    except BaseException:
        staged.close()
        raise
    return staged


def keep_region(staged: Staged, directory: Path, number: int, size: int) -> str:
    """Record a part written in place, replacing an earlier try's record; return its ETag.

    On failure the caller releases the region (`release_region`), as after a failed write.
    """
    assert staged.digests is not None
    if staged.written != size:
        raise IncompleteBody(f"part {number}: {staged.written} of {size} bytes arrived")
    etag = staged.digests.finish()
    _drop_records(directory, number)
    os.close(os.open(directory / f"{number:05d}.{etag}.{size}.at", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC))
    staged.close()  # releases the shared lock
    return etag


def release_region(staged: Staged, directory: Path, number: int) -> None:
    """After a failed try in place: give back the space it took, and free its range for another try.

    The range holds no recorded bytes (a record is made only once a part is whole), so a retry may
    write it again; its blocks are punched out of `data`, so that a part cut short by a full disk
    leaves no space taken until the upload is aborted.
    """
    if not staged.closed and staged.written:
        _punch_hole(staged.fd, staged.base, staged.written)
    staged.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / f"{number:05d}.region")


_FALLOC_FL_KEEP_SIZE = 1
_FALLOC_FL_PUNCH_HOLE = 2


@functools.cache
def _fallocate() -> Any | None:
    func = libc_function("fallocate")
    if func is not None:
        func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        func.restype = ctypes.c_int
    return func


def _punch_hole(fd: int, offset: int, length: int) -> None:
    """Deallocate a range of a file, keeping its size; a file system that cannot keeps the blocks."""
    func = _fallocate()
    if func is not None:
        func(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)


def keep_part(staging_dir: Path, staged: Staged, directory: Path, number: int) -> str:
    """Move a part written beside `data` into its upload's directory, replacing an earlier try; return its ETag."""
    assert staged.digests is not None  # a part's digest names its file
    etag = staged.digests.finish()
    staging = name_in_staging(staging_dir, staged)
    staged.close()
    with _shared_lock(directory):
        _drop_records(directory, number)
        os.replace(staging, directory / f"{number:05d}.{etag}.part")
    return etag


def _drop_records(directory: Path, number: int) -> None:
    prefix = f"{number:05d}."
    for entry in os.scandir(directory):
        if entry.name.startswith(prefix) and _RECORD.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


@dataclass(frozen=True, slots=True)
class Piece:
    """One listed part as stored: in its range of `data` (`offset` set) or in a file of its own."""

    number: int
    size: int
    source: Path
    offset: int | None = None  # None: `source` is the part's own file

    @property
    def in_place(self) -> bool:
        return self.offset is not None


def find_pieces(directory: Path, path: ArtifactPath, parts: Sequence[UploadedPart]) -> list[Piece]:
    """Each listed part as stored, in number order; `Conflict` when one is missing or its ETag differs."""
    require_upload(directory, path)
    records: dict[int, tuple[str, str, str | None]] = {}
    for entry in os.scandir(directory):
        if match := _RECORD.match(entry.name):
            records[int(match[1])] = (match[2], entry.name, match[3])
    part_size = _part_size(directory)
    found = []
    for part in sorted(parts, key=lambda item: item.number):
        record = records.get(part.number)
        if record is None or not _SHA256_HEX.match(part.etag) or record[0] != part.etag:
            raise Conflict(f"part {part.number} of the upload is missing or its ETag differs")
        _, name, at_size = record
        if at_size is None:
            try:
                size = os.stat(directory / name).st_size
            except FileNotFoundError:
                raise Conflict(f"part {part.number} of the upload is missing or its ETag differs") from None
            found.append(Piece(part.number, size, directory / name))
        else:
            offset = 0 if part.number == 1 else (part.number - 1) * (part_size or 0)
            found.append(Piece(part.number, int(at_size), directory / DATA_NAME, offset))
    return found


def _regions(directory: Path) -> set[int]:
    return {int(match[1]) for entry in os.scandir(directory) if (match := _REGION.match(entry.name))}


def _fits_in_place(pieces: list[Piece], part_size: int | None, regions: set[int]) -> bool:
    """Whether the listed parts are 1..K, of the part size but the last, which is no larger, and
    some of them were written in place.

    Parts written in ranges past K would be cut off by the truncation to the object's size: a
    completion that leaves some out copies instead, so that a retry listing them still finds them.
    """
    count = len(pieces)
    if not any(piece.in_place for piece in pieces):  # nothing to spare a copy of (no part count announced)
        return False
    if [piece.number for piece in pieces] != list(range(1, count + 1)):
        return False
    if count > 1 and (part_size is None or any(piece.size != part_size for piece in pieces[:-1])):
        return False
    if count > 1 and pieces[-1].size > (part_size or 0):
        return False
    return not any(number > count for number in regions)


def assemble_in_place(directory: Path, path: ArtifactPath, parts: Sequence[UploadedPart]) -> Staged | None:
    """`data` made the object without copying what was written in place, or None: copy instead.

    Holds the exclusive lock from before the records are read until the returned file is closed,
    so no part can be written into it meanwhile (None when a part is being written). A listed part
    kept in a file of its own but of the right size (a retry, a last part that came early) is copied
    into its range. The file is truncated to the object's size; `written` says that size.
    """
    require_upload(directory, path)
    try:
        fd = os.open(directory / DATA_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # an upload begun before `data` existed
    staged = Staged(fd, directory / DATA_NAME, None)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            staged.close()
            return None
        pieces = find_pieces(directory, path, parts)
        part_size = _part_size(directory)
        if not _fits_in_place(pieces, part_size, _regions(directory)):
            staged.close()
            return None
        for piece in pieces:
            if not piece.in_place:
                _copy_into(piece.source, fd, (piece.number - 1) * (part_size or 0), piece.size)
        total = sum(piece.size for piece in pieces)
        os.ftruncate(fd, total)
        staged.written = total
    except BaseException:
        staged.close()
        raise
    return staged


def _copy_into(source: Path, fd: int, offset: int, size: int) -> None:
    block = bytearray(WRITE_BATCH_BYTES)
    view = memoryview(block)
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        done = 0
        while done < size:
            read = os.preadv(src, [view[: min(len(block), size - done)]], done)
            if not read:
                raise Conflict(f"a part of the upload is shorter than recorded: {source.name}")
            written = 0
            while written < read:
                written += os.pwrite(fd, view[written:read], offset + done + written)
            done += read
    finally:
        os.close(src)


def copy_pieces(staged: Staged, pieces: list[Piece]) -> None:
    """Append the listed parts to `staged` (hashing as it goes): the assembly by copy."""
    for piece in pieces:
        with open(piece.source, "rb") as source:
            source.seek(piece.offset or 0)
            left = piece.size
            while left:
                block = source.read(min(WRITE_BATCH_BYTES, left))
                if not block:
                    raise Conflict(f"part {piece.number} of the upload is shorter than recorded")
                write_batch(staged, [block])
                left -= len(block)
