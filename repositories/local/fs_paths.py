"""Artifact paths as files under the root, reached without ever following a symbolic link.

Every operation walks its path from the root one component at a time, each opened with `openat`
and `O_NOFOLLOW` relative to the directory before it, and then acts on the last name relative to
the directory it holds open (`openat`, `fstatat`, `renameat`, `unlinkat`). The check and the use
are one step: a link swapped in at any moment makes the open fail; it can never send the
operation outside the root, whatever its target. The gateway never makes links itself, so a link
in the destination was put there by something else: it is left out of listings and archives, and a
path through one, or naming one, is refused (`InvalidPath`, 400); a DELETE of its own path removes
the link, never its target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from repositories.errors import InvalidPath
from repositories.local.staging import DIR_FLAGS, STAGING_DIR_NAME
from repositories.paths import ArtifactPath

FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""A stored file opened for reading: never through a link, never blocking on a FIFO planted there."""


def fs_path_of(root: Path, path: ArtifactPath) -> Path:
    """Where `path` lives under `root`, for messages and tests; the staging directory's name is refused.

    The path is never used to reach the file: `open_dir` walks it.
    """
    if path.parts and path.parts[0] == STAGING_DIR_NAME:
        raise InvalidPath(str(path), f"'{STAGING_DIR_NAME}' is reserved for uploads in progress")
    return root.joinpath(*path.parts)


def symlink_refused(path: ArtifactPath) -> InvalidPath:
    return InvalidPath(str(path), "it passes through or names a symbolic link, which the gateway does not follow")


def is_symlink_at(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_child_dir(dir_fd: int, name: str, path: ArtifactPath) -> int:
    """The directory `name` in `dir_fd`, opened without following a link.

    `symlink_refused` when `name` is a link; `NotADirectoryError` when it is something else that is
    not a directory; `FileNotFoundError` when it is missing.
    """
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:  # O_DIRECTORY | O_NOFOLLOW answers ENOTDIR for a link too
        if is_symlink_at(dir_fd, name):
            raise symlink_refused(path) from None
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path) from None
        raise


def open_dir(root: Path, names: Sequence[str], path: ArtifactPath) -> int:
    """A descriptor of the directory `root/names...`, each level opened relative to the one above.

    Raises `symlink_refused` for a link on the way, `FileNotFoundError` / `NotADirectoryError` when a
    level is missing or not a directory. The caller closes the descriptor.
    """
    fd = os.open(root, DIR_FLAGS)
    try:
        for name in names:
            child = open_child_dir(fd, name, path)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def parent_dir(root: Path, path: ArtifactPath) -> Iterator[int]:
    """The open directory holding `path`'s last name (`path` is not the root)."""
    fd = open_dir(root, path.parts[:-1], path)
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
