"""`LocalRepository`: the `ArtifactRepository` interface over the modules of this package.

Each method checks its arguments, then hands the blocking work to a function of the module of its
concern, in the executor; put() and the multipart methods drive a staging file through its steps.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

from repositories.base import ArtifactRepository, Download, ListEntry, ObjectInfo, UploadedPart
from repositories.deferred_digests import DeferredDigests
from repositories.digests import ExpectedDigests
from repositories.errors import InvalidPath, PermissionDenied
from repositories.local.commits import commit
from repositories.local.deletes import delete_path
from repositories.local.fs_paths import fs_path_of
from repositories.local.listing import LIST_STAT_BATCH, describe, sorted_children
from repositories.local.metadata import record_sha256
from repositories.local.multipart import (
    assemble_in_place,
    copy_pieces,
    create_upload_dir,
    find_pieces,
    keep_part,
    keep_region,
    open_region,
    release_region,
    upload_dir,
)
from repositories.local.reads import head_info, open_for_read
from repositories.local.staging import (
    STAGING_DIR_NAME,
    Staged,
    anonymous_files_work,
    discard,
    open_staging,
    refuse_without_room,
)
from repositories.local.streaming import WRITE_BATCH_BYTES, stream_to, write_batch
from repositories.local.sweep import sweep_staging
from repositories.local.threads import fs, in_thread
from repositories.paths import ArtifactPath


class LocalRepository(ArtifactRepository):
    """Artifacts as files under `root`."""

    kind = "local"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self._staging = root / STAGING_DIR_NAME
        self._anonymous = anonymous_files_work(self._staging)
        self._digests_later = DeferredDigests(record_sha256)

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

    def _fs_path(self, path: ArtifactPath) -> Path:
        return fs_path_of(self.root, path)

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
            return await fs(path, self._put_small, chunks, target, path, expected)
        # Hashing as the bytes arrive only when the client verifies or asks for the digest; else
        # the file is hashed after the answer (DeferredDigests), off the upload's time.
        open_staging = functools.partial(self._open_staging_with_room, digest_now=expected is not None)
        staged = await fs(path, open_staging, expected, content_length, f"'{path}'")
        try:
            await stream_to(path, staged, body)
            info = await fs(path, self._commit, staged, target, path)
        except BaseException:
            await in_thread(discard, staged)
            raise
        return await self._hash_after_answer(staged, path, info)

    async def _hash_after_answer(self, staged: Staged, path: ArtifactPath, info: ObjectInfo) -> ObjectInfo:
        """Hand a committed file without a digest to `DeferredDigests`; `info` as the client gets it."""
        if info.sha256 is None:  # the commit left the file open, to be hashed now that it is answered
            fd = staged.hand_over()
            if not self._digests_later.add(fd, str(path)):
                # Too many already wait: this one is hashed before its answer, not left without a digest.
                sha256 = await in_thread(self._digests_later.hash_now, fd)
                info = replace(info, sha256=sha256)
        return info

    def _put_small(
        self, chunks: list[bytes], target: Path, path: ArtifactPath, expected: ExpectedDigests | None
    ) -> ObjectInfo:
        staged = self._open_staging(expected)
        try:
            write_batch(staged, chunks)
            return self._commit(staged, target, path)
        except BaseException:
            discard(staged)
            raise

    def _open_staging_with_room(
        self,
        expected: ExpectedDigests | None,
        needed: int | None,
        what: str,
        *,
        final: bool = True,
        digest_now: bool = True,
    ) -> Staged:
        """`_open_staging`, refused at once (StorageFull) when `needed` bytes are known not to fit.

        `final`: the file becomes the object (not a multipart part), so with `fsync` on its bytes
        head for the disk as they are written, and the commit's fsync finds little left to flush.
        """
        staged = self._open_staging(expected, digest_now=digest_now)  # first: recreates a staging dir removed by hand
        staged.early_writeback = final and self.fsync
        if needed:
            refuse_without_room(staged, needed, what)
        return staged

    def _open_staging(self, expected: ExpectedDigests | None, *, digest_now: bool = True) -> Staged:
        return open_staging(self._staging, expected, anonymous=self._anonymous, digest_now=digest_now)

    def _commit(self, staged: Staged, target: Path, path: ArtifactPath) -> ObjectInfo:
        """Commit `staged` at `path`. `target` (from `_fs_path`, which refuses reserved names) is not
        looked up: the commit walks `path` from the root without following a link."""
        return commit(self.root, self._staging, staged, path, fsync=self.fsync)

    async def delete(self, path: ArtifactPath) -> None:
        if path.is_root:
            raise InvalidPath("", "refusing to delete the whole artifact destination")
        self._fs_path(path)  # refuses the staging directory's name
        await fs(path, delete_path, self.root, path)

    async def sweep_abandoned(self, older_than_s: float) -> int:
        return await in_thread(sweep_staging, self._staging, older_than_s)

    # -- multipart uploads (multipart.py) ----------------------------------------------------

    async def create_multipart(self, path: ArtifactPath, *, num_parts: int | None = None) -> str:
        if path.is_root:
            raise InvalidPath("", "an upload needs a file name")
        self._fs_path(path)  # refuses reserved names now rather than at completion
        upload_id = uuid.uuid4().hex
        await fs(path, create_upload_dir, upload_dir(self._staging, upload_id), path, num_parts or None)
        return upload_id

    async def put_part(
        self, path: ArtifactPath, upload_id: str, number: int, body: AsyncIterator[bytes], *, content_length: int | None
    ) -> str:
        directory = upload_dir(self._staging, upload_id)
        # At its final offset in the upload's `data` when the layout says where (multipart.py), so
        # that completing copies nothing; its bytes then head for the disk as they are written.
        open_in_place = functools.partial(open_region, writeback=self.fsync)
        region = await fs(path, open_in_place, directory, path, number, content_length)
        if region is not None:
            assert content_length is not None
            try:
                await stream_to(path, region, body)
                return await fs(path, keep_region, region, directory, number, content_length)
            except BaseException:
                await in_thread(release_region, region, directory, number)
                raise
        open_part = functools.partial(self._open_staging_with_room, final=False)
        staged = await fs(path, open_part, None, content_length, f"part {number} of '{path}'")
        try:
            await stream_to(path, staged, body)
            return await fs(path, keep_part, self._staging, staged, directory, number)
        except BaseException:
            await in_thread(discard, staged)
            raise

    async def multipart_size(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> int:
        pieces = await fs(path, find_pieces, upload_dir(self._staging, upload_id), path, parts)
        return sum(piece.size for piece in pieces)

    async def complete_multipart(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> ObjectInfo:
        directory = upload_dir(self._staging, upload_id)
        target = self._fs_path(path)
        assembled = await fs(path, assemble_in_place, directory, path, parts)
        if assembled is not None:  # the parts are in place: `data` becomes the object, nothing copied
            try:
                info = await fs(path, self._commit, assembled, target, path)
            except BaseException:
                await in_thread(assembled.close)  # `data` stays, so the completion can be retried
                raise
            info = await self._hash_after_answer(assembled, path, info)
        else:
            info = await self._complete_by_copy(directory, path, target, parts)
        await in_thread(shutil.rmtree, directory, True)
        return info

    async def _complete_by_copy(
        self, directory: Path, path: ArtifactPath, target: Path, parts: Sequence[UploadedPart]
    ) -> ObjectInfo:
        """Parts that are not all in place: copied, in number order, into a new file."""
        pieces = await fs(path, find_pieces, directory, path, parts)
        # The parts stay until the object is whole (a failed completion can be retried), so
        # assembling needs room for a second copy of them.
        total = sum(piece.size for piece in pieces)
        what = f"assembling '{path}' from its parts (a copy beside them)"
        staged = await fs(path, self._open_staging_with_room, None, total, what)
        try:
            await fs(path, copy_pieces, staged, pieces)
            return await fs(path, self._commit, staged, target, path)
        except BaseException:
            await in_thread(discard, staged)
            raise

    async def abort_multipart(self, path: ArtifactPath, upload_id: str) -> None:
        await in_thread(shutil.rmtree, upload_dir(self._staging, upload_id), True)

    # -- reads (reads.py, listing.py) --------------------------------------------------------

    async def get(self, path: ArtifactPath) -> Download:
        self._fs_path(path)
        return await fs(path, open_for_read, self.root, path)

    async def head(self, path: ArtifactPath) -> ObjectInfo:
        self._fs_path(path)
        return await fs(path, head_info, self.root, path)

    async def list(self, path: ArtifactPath, *, start_after: str | None = None) -> AsyncGenerator[ListEntry, None]:
        self._fs_path(path)
        names = await fs(path, sorted_children, self.root, path, start_after)
        for offset in range(0, len(names), LIST_STAT_BATCH):
            for entry in await fs(path, describe, self.root, path, names[offset : offset + LIST_STAT_BATCH]):
                yield entry
