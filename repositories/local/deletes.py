"""Deleting a file, or a directory with everything below it, relative to open directories.

The parent is reached through `fs_paths` and every removal is an `unlinkat` / `rmdir` relative to a
directory descriptor held open, each subdirectory opened with `O_NOFOLLOW`: a link met anywhere
(even one swapped in for a directory while the tree is removed) is unlinked itself, never entered,
so nothing outside the root can be removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from repositories.local.fs_paths import lstat_at, parent_dir
from repositories.local.staging import DIR_FLAGS
from repositories.paths import ArtifactPath


def delete_path(root: Path, path: ArtifactPath) -> None:
    """Remove what is at `path` (not the root); nothing there is no error."""
    try:
        with parent_dir(root, path) as dir_fd:
            try:
                lstat_at(dir_fd, path.name)
            except FileNotFoundError:
                return
            remove_at(dir_fd, path.name)
    except (FileNotFoundError, NotADirectoryError):  # a parent is missing or a file: nothing there
        return


def _open_subdir(dir_fd: int, name: str) -> int | None:
    """`name` in `dir_fd` opened as a directory, never through a link; None when it is not one."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:  # a file, or a link (O_NOFOLLOW with O_DIRECTORY says ENOTDIR)
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise


def _unlink(dir_fd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)


def remove_at(dir_fd: int, name: str) -> None:
    """Remove `name` in `dir_fd`: unlink it, or empty it depth first and remove it if a directory.

    Iterative (a tree put there by hand may be deeper than the recursion limit); one descriptor per
    level is held while its children go.
    """
    top = _open_subdir(dir_fd, name)
    if top is None:
        _unlink(dir_fd, name)
        return
    # Each level: (its descriptor, the descriptor and name it has in its parent, names left to remove).
    stack: list[tuple[int, int, str, list[tuple[str, bool]]]] = [(top, dir_fd, name, [])]
    try:
        stack[0][3].extend(_children(top))
        while stack:
            fd, parent_fd, own_name, pending = stack[-1]
            if pending:
                child, looks_like_dir = pending.pop()
                sub = _open_subdir(fd, child) if looks_like_dir else None
                if sub is None:
                    try:
                        _unlink(fd, child)
                    except IsADirectoryError:  # became a directory since the scan
                        pending.append((child, True))
                    continue
                stack.append((sub, fd, child, []))
                stack[-1][3].extend(_children(sub))
                continue
            stack.pop()
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(own_name, dir_fd=parent_fd)
    finally:
        for fd, *_ in stack:
            os.close(fd)


def _children(fd: int) -> list[tuple[str, bool]]:
    with os.scandir(fd) as entries:
        return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
