"""Committing a staged file: its parent directories opened (or made) without following symlinks, the
file linked or renamed into place atomically, and with `fsync` every directory that gained an entry
flushed before the upload is answered.
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
from repositories.local.fs_paths import require_inside
from repositories.local.metadata import object_info, record_sha256
from repositories.local.staging import DIR_FLAGS, Staged, link_anonymous, name_in_staging
from repositories.local.streaming import WRITE_BATCH_BYTES
from repositories.paths import ArtifactPath


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
    parents = _Parents([os.open(root, DIR_FLAGS)])
    try:
        for name in names:
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=parents.last)
            except FileNotFoundError:
                try:
                    os.mkdir(name, dir_fd=parents.last)
                    parents.created.append((len(parents.fds) - 1, name))
                except FileExistsError:
                    pass  # made by a concurrent upload meanwhile
                fd = os.open(name, DIR_FLAGS, dir_fd=parents.last)
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(
    root: Path, staging_dir: Path, staged: Staged, target: Path, path: ArtifactPath, *, fsync: bool
) -> ObjectInfo:
    """Put `staged` at `target` (`path` under `root`) and describe it.

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
    try:
        parents = _open_parents(root, path.parts[:-1])
    except _NotPlainDirectories:
        _commit_through_symlinks(root, staging_dir, staged, target, path, fsync=fsync)
    else:
        try:
            _place(staging_dir, staged, parents, path.parts[-1])
            if fsync:
                for fd in parents.dirty():
                    os.fsync(fd)
        finally:
            parents.close()
    if sha256 is not None:
        staged.close()  # else put() hands the descriptor to DeferredDigests, to hash the file
    return object_info(path, st, sha256)


def _place(staging_dir: Path, staged: Staged, parents: _Parents, name: str) -> None:
    """Put the staged file at `name` in the opened parent, atomically; undo new dirs on failure."""
    try:
        if staged.path is None:
            try:
                link_anonymous(staged.fd, parents.last, name)
                return
            except FileExistsError:  # an overwrite: a link cannot replace, a rename can
                pass
        os.replace(name_in_staging(staging_dir, staged), name, dst_dir_fd=parents.last)
    except BaseException:
        parents.undo()
        raise


def _commit_through_symlinks(
    root: Path, staging_dir: Path, staged: Staged, target: Path, path: ArtifactPath, *, fsync: bool
) -> None:
    """The original commit, for a path through a symlink: realpath must show it stays inside."""
    staging = name_in_staging(staging_dir, staged)
    created = _make_parents(root, target.parent, path)
    try:
        os.replace(staging, target)
    except OSError:
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        raise
    if fsync:
        for directory in {target.parent, *(d.parent for d in created)}:
            _fsync_dir(directory)


def _make_parents(root: Path, directory: Path, path: ArtifactPath) -> list[Path]:
    """Create the missing directories up to `directory`; return those created, in order."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        if current == root:
            break
        missing.append(current)
        current = current.parent
    if not current.is_dir():
        raise Conflict(f"A file is in the way of '{path}': a parent directory is an existing file")
    require_inside(root, current, path)
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
