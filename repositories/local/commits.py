"""Committing a staged file: its parent directories opened (or made) one level at a time relative to
the level above, never through a symbolic link, the file linked or renamed into place relative to
the opened parent (and from the opened staging directory), and with `fsync` every directory that
gained an entry flushed before the upload is answered (together, when a new folder chain made
several: `flushes.py`). The file itself is flushed before it gets its name, so a crash can never
leave the name with missing bytes. No path is looked up twice, so a link
swapped in anywhere on the way makes the commit fail; it cannot place the file outside the root.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from repositories.base import ObjectInfo
from repositories.deferred_digests import file_sha256
from repositories.errors import Conflict
from repositories.local.flushes import fsync_together
from repositories.local.fs_paths import open_child_dir
from repositories.local.metadata import object_info, record_sha256
from repositories.local.staging import DIR_FLAGS, STAGING_DIR_NAME, Staged, link_anonymous, name_in_staging
from repositories.local.streaming import WRITE_BATCH_BYTES
from repositories.paths import ArtifactPath


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


def _open_parents(root: Path, names: Sequence[str], path: ArtifactPath) -> _Parents:
    """Open (making what is missing) each of `names` below `root`, refusing symlinks on the way.

    One openat per level when the directories exist, no realpath walk from `/`; a level that is a
    link is `InvalidPath`, one that is a file `Conflict`, both before anything is created below it.
    """
    parents = _Parents([os.open(root, DIR_FLAGS)])
    try:
        for name in names:
            try:
                fd = open_child_dir(parents.last, name, path)
            except FileNotFoundError:
                try:
                    os.mkdir(name, dir_fd=parents.last)
                    parents.created.append((len(parents.fds) - 1, name))
                except FileExistsError:
                    pass  # made by a concurrent upload meanwhile
                fd = open_child_dir(parents.last, name, path)
            parents.fds.append(fd)
    except NotADirectoryError:
        parents.undo()
        parents.close()
        raise Conflict(f"A file is in the way of '{path}': a parent directory is an existing file") from None
    except BaseException:
        parents.undo()
        parents.close()
        raise
    return parents


def commit(root: Path, staging_dir: Path, staged: Staged, path: ArtifactPath, *, fsync: bool) -> ObjectInfo:
    """Put `staged` at `path` under `root` and describe it.

    Without a digest (`info.sha256` None) the staging file stays open, for put() to hash it later.
    """
    if staged.digests is not None:
        sha256: str | None = staged.digests.finish()
    elif staged.written <= WRITE_BATCH_BYTES:  # a small body sent without its length: hash it now
        sha256, _ = file_sha256(staged.fd, bytearray(max(staged.written, 1)))
    else:
        sha256 = None
    st = os.fstat(staged.fd)
    if sha256 is not None:
        record_sha256(staged.fd, sha256, st)
    if fsync:  # after the xattr, so that the digest is as durable as the bytes
        os.fsync(staged.fd)
    parents = _open_parents(root, path.parts[:-1], path)
    try:
        _place(staging_dir, staged, parents, path.parts[-1])
        if fsync:  # the file's folder, and the parent of each folder made for it, all at once
            fsync_together(parents.dirty())
    finally:
        parents.close()
    if sha256 is not None:
        staged.close()  # else put() hands the descriptor to DeferredDigests, to hash the file
    return object_info(path, st, sha256)


def _place(staging_dir: Path, staged: Staged, parents: _Parents, name: str) -> None:
    """Put the staged file at `name` in the opened parent, atomically; undo new dirs on failure.

    A link already at `name` is replaced by the file (a rename never follows it). A named staging
    file is renamed from the staging directory opened below the root without following a link.
    """
    try:
        if staged.path is None:
            try:
                link_anonymous(staged.fd, parents.last, name)
                return
            except FileExistsError:  # an overwrite: a link cannot replace, a rename can
                pass
        # Below the staging directory: a name in it, or a multipart upload's `mpu/<id>/data`.
        staging_name = str(name_in_staging(staging_dir, staged).relative_to(staging_dir))
        staging_fd = os.open(STAGING_DIR_NAME, DIR_FLAGS, dir_fd=parents.fds[0])
        try:
            os.replace(staging_name, name, src_dir_fd=staging_fd, dst_dir_fd=parents.last)
        finally:
            os.close(staging_fd)
    except BaseException:
        parents.undo()
        raise
