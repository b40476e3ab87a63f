"""Local-disk repository: staging file + atomic rename for writes, sendfile-ready reads.

Every blocking filesystem call runs in the event loop's default executor (through aiofiles, or
`OrderedOffload` for a streamed body), batched so that one hand-over moves half a MiB or more, never
one per network chunk. A large upload nobody asked a digest of is hashed after its answer
(`DeferredDigests`); a small file is read whole when opened for a download.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

import aiofiles.os

from repositories.base import ArtifactRepository, BytesDownload, Download, ListEntry, ObjectInfo, UploadedPart
from repositories.deferred_digests import DeferredDigests, file_sha256
from repositories.digests import DigestAccumulator, ExpectedDigests
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
from repositories.ordered_offload import OrderedOffload
from repositories.paths import ArtifactPath
from repositories.writeback import WRITEBACK_WINDOW_BYTES, start_writeback

STAGING_DIR_NAME = ".artifact-gateway-staging"
"""Reserved top-level directory holding in-progress uploads; hidden from listings."""

WRITE_BATCH_BYTES = 1 << 20
READ_CHUNK_BYTES = 1 << 20
READ_WHOLE_BYTES = 64 << 10
"""Files up to this size are read when opened: one thread hop per download instead of three."""
LIST_STAT_BATCH = 512
MULTIPART_DIR_NAME = "mpu"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256_XATTR = "user.artifact_gateway.sha256"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

T = TypeVar("T")
_Names = list[str]  # aliases: inside the class, `list` names the method
_Entries = list[ListEntry]


async def _in_thread(func: Callable[..., T], *args: object) -> T:
    """Run `func` in aiofiles' executor; if cancelled, let the thread finish before unwinding.

    Waiting matters: cleanup after a cancel closes file descriptors the thread may still use.
    """
    task = asyncio.ensure_future(aiofiles.os.wrap(func)(*args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise


async def _fs(path: ArtifactPath, func: Callable[..., T], *args: object) -> T:
    """`_in_thread` for file-system work on `path`: an OSError becomes a repository error."""
    try:
        return await _in_thread(func, *args)
    except OSError as exc:
        raise _os_error(exc, path) from exc


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _os_error(exc: OSError, path: ArtifactPath) -> RepositoryError:
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


@dataclass
class _Staged:
    """An upload in progress: an open staging file and what has been hashed so far.

    `path` is None for an anonymous (O_TMPFILE) file: it has no name until it is linked into place,
    and the kernel frees it if the process dies first, so it can leave no debris to sweep.
    """

    fd: int
    path: Path | None
    digests: DigestAccumulator | None  # None: the SHA-256 is computed after the commit (DeferredDigests)
    closed: bool = field(default=False)
    early_writeback: bool = False  # a durable write: hand each filled window to the disk at once
    written: int = 0
    written_back: int = 0

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def hand_over(self) -> int:
        """The descriptor, now the caller's to close."""
        self.closed = True
        return self.fd


def _write_batch(staged: _Staged, chunks: list[bytes]) -> None:
    for chunk in chunks:
        if staged.digests is not None:
            staged.digests.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(staged.fd, view)
            view = view[written:]
            staged.written += written
    pending = staged.written - staged.written_back
    if staged.early_writeback and pending >= WRITEBACK_WINDOW_BYTES:
        start_writeback(staged.fd, staged.written_back, pending)
        staged.written_back = staged.written


def _concatenate(staged: _Staged, files: list[Path]) -> None:
    """Append `files` to the staging file, hashing as it goes (one executor hop for the lot)."""
    for name in files:
        with open(name, "rb") as part:
            while block := part.read(WRITE_BATCH_BYTES):
                _write_batch(staged, [block])


STREAM_BATCH_BYTES = 512 << 10
"""A streamed upload is handed to its writer thread in batches of about this many bytes."""


async def _batches(body: AsyncIterator[bytes], batch_bytes: int) -> AsyncIterator[list[bytes]]:
    """Group network chunks into batches of about `batch_bytes`: one hand-over per batch, not per chunk."""
    batch: list[bytes] = []
    pending = 0
    async for chunk in body:
        batch.append(chunk)
        pending += len(chunk)
        if pending >= batch_bytes:
            yield batch
            batch, pending = [], 0
    if batch:
        yield batch


async def _stream_to(path: ArtifactPath, staged: _Staged, body: AsyncIterator[bytes]) -> None:
    """Write `body` into `staged` (hashing it when `staged.digests` is set) a batch at a time in a
    worker thread, receiving meanwhile.

    The event loop receives the next batch while the thread writes and hashes the previous ones, so
    the network and the disk overlap instead of taking turns. One batch is written while the next
    is received, no more: with the SHA-256 computed after the answer (`DeferredDigests`), the
    writer keeps up with the event loop, and a deeper queue (1 MiB batches, one more queued) no
    longer made a single upload faster, only 8 uploads at once 3 MiB larger (benchmarks/RESULTS.md).
    Errors from the body (a client gone) propagate unchanged, after the write in flight has finished.
    """

    def write(batch: list[bytes]) -> None:
        try:
            _write_batch(staged, batch)
        except OSError as exc:
            raise _os_error(exc, path) from exc

    writer = OrderedOffload(write, depth=1)
    try:
        async for batch in _batches(body, STREAM_BATCH_BYTES):
            await writer.submit(batch)
        await writer.finish()
    except BaseException:
        await writer.abort()
        raise


def _discard(staged: _Staged) -> None:
    staged.close()
    if staged.path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged.path)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _NotPlainDirectories(Exception):
    """A directory on the way is a symlink or not a directory: the realpath-checked path decides."""


@dataclass
class _Parents:
    """The directories from the root down to a file's parent, opened without following symlinks.

    Holding them open means the file lands in the very directory that was checked (no path is
    looked up again), and lets the new entries be fsynced without reopening anything.
    """

    fds: list[int] = field(default_factory=list)
    created: list[tuple[int, str]] = field(default_factory=list)  # (index of the parent in fds, name)

    @property
    def last(self) -> int:
        return self.fds[-1]

    def dirty(self) -> set[int]:
        """Directories that gained an entry: the file's parent and the parent of each one made."""
        return {self.last, *(self.fds[index] for index, _ in self.created)}

    def undo(self) -> None:
        for index, name in reversed(self.created):
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=self.fds[index])
        self.created.clear()

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def _open_parents(root: Path, names: Sequence[str]) -> _Parents:
    """Open (making what is missing) each of `names` below `root`, refusing symlinks on the way.

    One openat per level when the directories exist, no realpath walk from `/`; raises
    `_NotPlainDirectories` before creating anything when a level is a symlink or a file.
    """
    parents = _Parents([os.open(root, _DIR_FLAGS)])
    try:
        for name in names:
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parents.last)
            except FileNotFoundError:
                try:
                    os.mkdir(name, dir_fd=parents.last)
                    parents.created.append((len(parents.fds) - 1, name))
                except FileExistsError:
                    pass  # made by a concurrent upload meanwhile
                fd = os.open(name, _DIR_FLAGS, dir_fd=parents.last)
            parents.fds.append(fd)
    except NotADirectoryError:
        parents.undo()
        parents.close()
        raise _NotPlainDirectories from None
    except BaseException:
        parents.undo()
        parents.close()
        raise
    return parents


def _link_anonymous(fd: int, parent_fd: int, name: str) -> None:
    """Give an O_TMPFILE file `name` in `parent_fd` (linkat through /proc: no CAP_DAC_READ_SEARCH).

    Always with a directory fd: without one, `os.link` calls link(2), which links the /proc symlink
    itself (EXDEV) instead of following it.
    """
    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=parent_fd, follow_symlinks=True)


def _anonymous_files_work(directory: Path) -> bool:
    """Whether O_TMPFILE and linking it through /proc work here (file system, kernel, /proc mounted)."""
    probe = f"probe-{uuid.uuid4().hex}.part"
    try:
        dir_fd = os.open(directory, _DIR_FLAGS)
    except OSError:
        return False
    try:
        fd = os.open(".", os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            _link_anonymous(fd, dir_fd, probe)
            os.unlink(probe, dir_fd=dir_fd)
        finally:
            os.close(fd)
    except OSError:
        return False
    finally:
        os.close(dir_fd)
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record_sha256(fd: int, sha256: str, st: os.stat_result) -> None:
    """Remember the digest beside the bytes; tied to size and mtime so edits invalidate it."""
    with contextlib.suppress(OSError):  # file systems without user xattrs just lose the digest
        os.setxattr(fd, _SHA256_XATTR, f"{sha256}:{st.st_size}:{st.st_mtime_ns}".encode())


def _recorded_sha256(fd_or_path: int | Path, st: os.stat_result) -> str | None:
    try:
        raw = os.getxattr(fd_or_path, _SHA256_XATTR).decode()
    except OSError:
        return None
    sha256, _, rest = raw.partition(":")
    return sha256 if rest == f"{st.st_size}:{st.st_mtime_ns}" else None


def _info(path: ArtifactPath, st: os.stat_result, sha256: str | None) -> ObjectInfo:
    return ObjectInfo(
        path=path,
        size=st.st_size,
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        # From the file, not its digest: a digest recorded after the upload must not change the ETag.
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
        sha256=sha256,
    )


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
            chunk = await _in_thread(os.pread, fd, min(READ_CHUNK_BYTES, end - offset), offset)
            if not chunk:  # truncated under us: stop short, the client sees a short body
                return
            offset += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        if not self._file.closed:
            await _in_thread(self._file.close)


class LocalRepository(ArtifactRepository):
    """Artifacts as files under `root`."""

    kind = "local"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self._staging = root / STAGING_DIR_NAME
        self._anonymous = _anonymous_files_work(self._staging)
        self._digests_later = DeferredDigests(_record_sha256)

    @classmethod
    def open(cls, root: str | Path, *, fsync: bool = True) -> LocalRepository:
        """Create `root` (and its staging dir) if needed and check it is writable (at startup)."""
        resolved = Path(root).expanduser().resolve()
        try:
            (resolved / STAGING_DIR_NAME).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermissionDenied(f"cannot create artifact destination '{resolved}': {exc.strerror}") from exc
        if not os.access(resolved / STAGING_DIR_NAME, os.W_OK | os.X_OK):
            raise PermissionDenied(f"artifact destination '{resolved}' is not writable")
        return cls(resolved, fsync=fsync)

    async def close(self) -> None:
        await self._digests_later.close()

    async def digests_settled(self) -> None:
        """Return once the digest of every upload answered so far is recorded (for tests)."""
        await self._digests_later.settled()

    # -- path handling -----------------------------------------------------------------------

    def _fs_path(self, path: ArtifactPath) -> Path:
        if path.parts and path.parts[0] == STAGING_DIR_NAME:
            raise InvalidPath(str(path), f"'{STAGING_DIR_NAME}' is reserved for uploads in progress")
        return self.root.joinpath(*path.parts)

    def _require_inside(self, fs_path: Path, path: ArtifactPath) -> None:
        """Refuse a path whose real location (after symlinks) leaves the root."""
        real = os.path.realpath(fs_path)
        if real != str(self.root) and not real.startswith(str(self.root) + os.sep):
            raise InvalidPath(str(path), "resolves outside the artifact destination")

    # -- writes ------------------------------------------------------------------------------

    async def put(
        self,
        path: ArtifactPath,
        body: AsyncIterator[bytes],
        *,
        expected: ExpectedDigests | None = None,
        content_length: int | None = None,
    ) -> ObjectInfo:
        if path.is_root:
            raise InvalidPath("", "an upload needs a file name")
        target = self._fs_path(path)
        if content_length is not None and content_length <= WRITE_BATCH_BYTES:
            # A small body (its declared length bounds it) is received whole, then staged, written
            # and committed in one thread hop instead of three: small files are mostly overhead.
            chunks = [chunk async for chunk in body]
            return await _fs(path, self._put_small, chunks, target, path, expected)
        # Hashing as the bytes arrive only when the client verifies or asks for the digest; else
        # the file is hashed after the answer (DeferredDigests), off the upload's time.
        open_staging = functools.partial(self._open_staging_with_room, digest_now=expected is not None)
        staged = await _fs(path, open_staging, expected, content_length, f"'{path}'")
        try:
            await _stream_to(path, staged, body)
            info = await _fs(path, self._commit, staged, target, path)
        except BaseException:
            await _in_thread(_discard, staged)
            raise
        if info.sha256 is None:  # the commit left the file open, to be hashed now that it is answered
            fd = staged.hand_over()
            if not self._digests_later.add(fd, str(path)):
                # Too many already wait: this one is hashed before its answer, not left without a digest.
                sha256 = await _in_thread(self._digests_later.hash_now, fd)
                info = replace(info, sha256=sha256)
        return info

    def _put_small(
        self, chunks: list[bytes], target: Path, path: ArtifactPath, expected: ExpectedDigests | None
    ) -> ObjectInfo:
        staged = self._open_staging(expected)
        try:
            _write_batch(staged, chunks)
            return self._commit(staged, target, path)
        except BaseException:
            _discard(staged)
            raise

    def _open_staging_with_room(
        self,
        expected: ExpectedDigests | None,
        needed: int | None,
        what: str,
        *,
        final: bool = True,
        digest_now: bool = True,
    ) -> _Staged:
        """`_open_staging`, refused at once (StorageFull) when `needed` bytes are known not to fit.

        `final`: the file becomes the object (not a multipart part), so with `fsync` on its bytes
        head for the disk as they are written, and the commit's fsync finds little left to flush.

        Only a shortcut for a size declared in advance, so that a client is not left sending
        gigabytes that cannot be stored: ENOSPC during the write stays the rule (other writers
        share the disk). `f_bavail` is the room an unprivileged user has; a gateway running as
        root leaves the file system's reserved blocks to the system.
        """
        staged = self._open_staging(expected, digest_now=digest_now)  # first: recreates a staging dir removed by hand
        staged.early_writeback = final and self.fsync
        if needed:
            st = os.fstatvfs(staged.fd)
            free = st.f_bavail * st.f_frsize
            if needed > free:
                _discard(staged)
                raise StorageFull(
                    f"The artifact destination is full: {what} needs {_mib(needed)} and {_mib(free)} are free; "
                    "nothing was stored. Free space on the server's artifact storage, then retry."
                )
        return staged

    def _open_staging(self, expected: ExpectedDigests | None, *, digest_now: bool = True) -> _Staged:
        """An anonymous staging file where the file system allows it, else a named one.

        Open for reading too, so that a file hashed after its commit is read through this descriptor.
        """
        digests = DigestAccumulator(expected) if digest_now else None
        if not self._anonymous:
            return self._open_named_staging(digests)
        flags = os.O_RDWR | os.O_TMPFILE | os.O_CLOEXEC
        try:
            fd = os.open(self._staging, flags, 0o666)
        except FileNotFoundError:  # staging dir removed by hand while running
            self._staging.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._staging, flags, 0o666)
        return _Staged(fd, None, digests)

    def _open_named_staging(self, digests: DigestAccumulator | None) -> _Staged:
        staging = self._staging / f"{uuid.uuid4().hex}.part"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(staging, flags, 0o666)
        except FileNotFoundError:  # staging dir removed by hand while running
            self._staging.mkdir(parents=True, exist_ok=True)
            fd = os.open(staging, flags, 0o666)
        return _Staged(fd, staging, digests)

    def _name_in_staging(self, staged: _Staged) -> Path:
        """Give an anonymous staging file a (sweepable) name in the staging directory."""
        if staged.path is None:
            name = f"{uuid.uuid4().hex}.part"
            staging_fd = os.open(self._staging, _DIR_FLAGS)
            try:
                _link_anonymous(staged.fd, staging_fd, name)
            finally:
                os.close(staging_fd)
            staged.path = self._staging / name
        return staged.path

    def _commit(self, staged: _Staged, target: Path, path: ArtifactPath) -> ObjectInfo:
        if staged.digests is not None:
            sha256: str | None = staged.digests.finish()
        elif staged.written <= WRITE_BATCH_BYTES:  # a small body sent without its length: hash it now
            sha256, _ = file_sha256(staged.fd, bytearray(max(staged.written, 1)))
        else:
            sha256 = None
        st = os.fstat(staged.fd)
        if sha256 is not None:
            _record_sha256(staged.fd, sha256, st)
        if self.fsync:  # after the xattr, so that the digest is as durable as the bytes
            os.fsync(staged.fd)
        try:
            parents = _open_parents(self.root, path.parts[:-1])
        except _NotPlainDirectories:
            self._commit_through_symlinks(staged, target, path)
        else:
            try:
                self._place(staged, parents, path.parts[-1])
                if self.fsync:
                    for fd in parents.dirty():
                        os.fsync(fd)
            finally:
                parents.close()
        if sha256 is not None:
            staged.close()  # else put() hands the descriptor to DeferredDigests, to hash the file
        return _info(path, st, sha256)

    def _place(self, staged: _Staged, parents: _Parents, name: str) -> None:
        """Put the staged file at `name` in the opened parent, atomically; undo new dirs on failure."""
        try:
            if staged.path is None:
                try:
                    _link_anonymous(staged.fd, parents.last, name)
                    return
                except FileExistsError:  # an overwrite: a link cannot replace, a rename can
                    pass
            os.replace(self._name_in_staging(staged), name, dst_dir_fd=parents.last)
        except BaseException:
            parents.undo()
            raise

    def _commit_through_symlinks(self, staged: _Staged, target: Path, path: ArtifactPath) -> None:
        """The original commit, for a path through a symlink: realpath must show it stays inside."""
        staging = self._name_in_staging(staged)
        created = self._make_parents(target.parent, path)
        try:
            os.replace(staging, target)
        except OSError:
            for directory in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
            raise
        if self.fsync:
            for directory in {target.parent, *(d.parent for d in created)}:
                _fsync_dir(directory)

    def _make_parents(self, directory: Path, path: ArtifactPath) -> list[Path]:
        """Create the missing directories up to `directory`; return those created, in order."""
        missing: list[Path] = []
        current = directory
        while not current.exists():
            if current == self.root:
                break
            missing.append(current)
            current = current.parent
        if not current.is_dir():
            raise Conflict(f"A file is in the way of '{path}': a parent directory is an existing file")
        self._require_inside(current, path)
        created: list[Path] = []
        try:
            for new_dir in reversed(missing):
                try:
                    os.mkdir(new_dir)
                    created.append(new_dir)
                except FileExistsError:
                    if not new_dir.is_dir():
                        raise
        except OSError:
            for new_dir in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(new_dir)
            raise
        return created

    async def delete(self, path: ArtifactPath) -> None:
        if path.is_root:
            raise InvalidPath("", "refusing to delete the whole artifact destination")
        await _fs(path, self._delete, self._fs_path(path), path)

    def _delete(self, fs_path: Path, path: ArtifactPath) -> None:
        self._require_inside(fs_path.parent, path)  # the link itself may go; what it points to may not
        try:
            st = os.lstat(fs_path)
        except (FileNotFoundError, NotADirectoryError):
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(fs_path)
        else:
            os.unlink(fs_path)

    async def sweep_abandoned(self, older_than_s: float) -> int:
        return await _in_thread(self._sweep_staging, older_than_s)

    def _sweep_staging(self, older_than_s: float) -> int:
        """Remove stale staging files and multipart uploads whose newest part is stale."""
        cutoff = time.time() - older_than_s
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in list(os.scandir(self._staging)):
                with contextlib.suppress(FileNotFoundError):
                    if entry.name.endswith(".part") and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        with contextlib.suppress(FileNotFoundError):
            for upload in list(os.scandir(self._staging / MULTIPART_DIR_NAME)):
                with contextlib.suppress(FileNotFoundError):
                    newest = max(item.stat().st_mtime for item in [upload, *os.scandir(upload.path)])
                    if newest < cutoff:
                        shutil.rmtree(upload.path, ignore_errors=True)
                        removed += 1
        return removed

    # -- multipart uploads: <staging>/mpu/<upload id>/ holds upload.json and NNNNN.<sha256>.part --

    def _upload_dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise NotFound(f"upload {upload_id[:64]}")
        return self._staging / MULTIPART_DIR_NAME / upload_id

    async def create_multipart(self, path: ArtifactPath) -> str:
        if path.is_root:
            raise InvalidPath("", "an upload needs a file name")
        self._fs_path(path)  # refuses reserved names now rather than at completion
        upload_id = uuid.uuid4().hex
        await _fs(path, self._create_upload_dir, self._upload_dir(upload_id), path)
        return upload_id

    @staticmethod
    def _create_upload_dir(directory: Path, path: ArtifactPath) -> None:
        directory.mkdir(parents=True)
        try:
            (directory / "upload.json").write_text(json.dumps({"path": str(path), "created": time.time()}))
        except BaseException:  # a full disk: leave no half-made upload behind
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _require_upload(self, directory: Path, path: ArtifactPath) -> None:
        try:
            recorded = json.loads((directory / "upload.json").read_text())["path"]
        except (OSError, ValueError, KeyError):
            raise NotFound(f"upload {directory.name}") from None
        if recorded != str(path):
            raise NotFound(f"upload {directory.name} for '{path}'")

    async def put_part(
        self, path: ArtifactPath, upload_id: str, number: int, body: AsyncIterator[bytes], *, content_length: int | None
    ) -> str:
        directory = self._upload_dir(upload_id)
        await _fs(path, self._require_upload, directory, path)
        open_part = functools.partial(self._open_staging_with_room, final=False)
        staged = await _fs(path, open_part, None, content_length, f"part {number} of '{path}'")
        try:
            await _stream_to(path, staged, body)
            return await _fs(path, self._keep_part, staged, directory, number)
        except BaseException:
            await _in_thread(_discard, staged)
            raise

    def _keep_part(self, staged: _Staged, directory: Path, number: int) -> str:
        assert staged.digests is not None  # a part's digest names its file
        etag = staged.digests.finish()
        staging = self._name_in_staging(staged)
        staged.close()
        for old in directory.glob(f"{number:05d}.*.part"):
            old.unlink(missing_ok=True)
        os.replace(staging, directory / f"{number:05d}.{etag}.part")
        return etag

    def _part_files(self, directory: Path, path: ArtifactPath, parts: Sequence[UploadedPart]) -> list[tuple[Path, int]]:
        """Each listed part's file and size, in number order; `Conflict` when one is missing."""
        self._require_upload(directory, path)
        found = []
        for part in sorted(parts, key=lambda item: item.number):
            try:
                if not _SHA256_HEX.match(part.etag):
                    raise FileNotFoundError
                candidate = directory / f"{part.number:05d}.{part.etag}.part"
                found.append((candidate, os.stat(candidate).st_size))
            except FileNotFoundError:
                raise Conflict(f"part {part.number} of the upload is missing or its ETag differs") from None
        return found

    async def multipart_size(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> int:
        found = await _fs(path, self._part_files, self._upload_dir(upload_id), path, parts)
        return sum(size for _, size in found)

    async def complete_multipart(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> ObjectInfo:
        directory = self._upload_dir(upload_id)
        found = await _fs(path, self._part_files, directory, path, parts)
        # The parts stay until the object is whole (a failed completion can be retried), so
        # assembling needs room for a second copy of them.
        total = sum(size for _, size in found)
        what = f"assembling '{path}' from its parts (a copy beside them)"
        staged = await _fs(path, self._open_staging_with_room, None, total, what)
        try:
            await _fs(path, _concatenate, staged, [name for name, _ in found])
            info = await _fs(path, self._commit, staged, self._fs_path(path), path)
        except BaseException:
            await _in_thread(_discard, staged)
            raise
        await _in_thread(shutil.rmtree, directory, True)
        return info

    async def abort_multipart(self, path: ArtifactPath, upload_id: str) -> None:
        await _in_thread(shutil.rmtree, self._upload_dir(upload_id), True)

    # -- reads -------------------------------------------------------------------------------

    async def get(self, path: ArtifactPath) -> Download:
        return await _fs(path, self._open_for_read, self._fs_path(path), path)

    def _open_for_read(self, fs_path: Path, path: ArtifactPath) -> Download:
        try:
            self._require_inside(fs_path, path)
            # O_NONBLOCK: opening a FIFO someone planted must not hang a thread.
            fd = os.open(fs_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(path) from None
        try:
            st = os.fstat(fd)
            self._require_regular_file(st, path)
            info = _info(path, st, _recorded_sha256(fd, st))
            # Truncated meanwhile: shorter than `info.size`, as a client would see from sendfile.
            data = os.pread(fd, st.st_size, 0) if st.st_size <= READ_WHOLE_BYTES else None
        except BaseException:
            os.close(fd)
            raise
        if data is not None:
            os.close(fd)
            return BytesDownload(data, info)
        return LocalDownload(os.fdopen(fd, "rb", buffering=0), info)

    @staticmethod
    def _require_regular_file(st: os.stat_result, path: ArtifactPath) -> None:
        if stat.S_ISDIR(st.st_mode):
            raise Conflict(f"Artifact path refers to a directory, not a file: '{path}'")
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(path)

    async def head(self, path: ArtifactPath) -> ObjectInfo:
        return await _fs(path, self._head, self._fs_path(path), path)

    def _head(self, fs_path: Path, path: ArtifactPath) -> ObjectInfo:
        try:
            self._require_inside(fs_path, path)
            st = os.stat(fs_path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(path) from None
        self._require_regular_file(st, path)
        return _info(path, st, _recorded_sha256(fs_path, st))

    async def list(self, path: ArtifactPath, *, start_after: str | None = None) -> AsyncGenerator[ListEntry, None]:
        fs_path = self._fs_path(path)
        names = await _fs(path, self._sorted_children, fs_path, path, start_after)
        for offset in range(0, len(names), LIST_STAT_BATCH):
            for entry in await _fs(path, self._describe, fs_path, names[offset : offset + LIST_STAT_BATCH]):
                yield entry

    def _sorted_children(self, fs_path: Path, path: ArtifactPath, start_after: str | None) -> _Names:
        """Names of the children after `start_after` in sort-key order; stat-free for huge dirs."""
        try:
            self._require_inside(fs_path, path)
            with os.scandir(fs_path) as entries:
                keys = [f"{entry.name}/" if entry.is_dir() else entry.name for entry in entries]
        except (FileNotFoundError, NotADirectoryError):
            return []
        if path.is_root:
            keys = [key for key in keys if key != f"{STAGING_DIR_NAME}/"]
        if start_after is not None:
            keys = [key for key in keys if key > start_after]
        keys.sort()
        return [key.removesuffix("/") for key in keys]

    def _describe(self, directory: Path, names: _Names) -> _Entries:
        described: _Entries = []
        for name in names:
            try:
                st = os.stat(directory / name)
            except OSError:  # vanished or a dangling symlink
                continue
            if stat.S_ISDIR(st.st_mode):
                described.append(ListEntry(name=name, is_dir=True))
            elif stat.S_ISREG(st.st_mode):
                described.append(ListEntry(name=name, is_dir=False, size=st.st_size))
        return described
