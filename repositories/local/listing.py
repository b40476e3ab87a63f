"""Listings: a directory's children in storage key order, then stat-ed a batch at a time.

The directory is reached through `fs_paths` (no link followed) and its children are looked at with
`lstat`: a symbolic link, a FIFO, a socket or a device is left out, so a listing (and an archive,
which walks listings) shows only what a GET can serve and never descends through a link.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from repositories.base import ListEntry, UnusableNames
from repositories.local.fs_paths import lstat_at, open_dir
from repositories.local.staging import STAGING_DIR_NAME
from repositories.paths import ArtifactPath

LIST_STAT_BATCH = 512


def sorted_children(root: Path, path: ArtifactPath, start_after: str | None) -> list[str]:
    """Names of the files and directories after `start_after` in sort-key order; stat-free for huge dirs."""
    try:
        fd = open_dir(root, path.parts, path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    try:
        with os.scandir(fd) as entries:  # scans a duplicate of `fd`; the types come from the dirent
            keys = [
                f"{entry.name}/" if entry.is_dir(follow_symlinks=False) else entry.name
                for entry in entries
                if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False)
            ]
    finally:
        os.close(fd)
    if path.is_root:
        keys = [key for key in keys if key != f"{STAGING_DIR_NAME}/"]
    unusable = UnusableNames("local", path)
    keys = [key for key in keys if unusable.usable(key.removesuffix("/"))]
    unusable.report()
    if start_after is not None:
        keys = [key for key in keys if key > start_after]
    keys.sort()
    return [key.removesuffix("/") for key in keys]


def describe(root: Path, path: ArtifactPath, names: list[str]) -> list[ListEntry]:
    """Entries for those of `names` in directory `path` that are still files or directories (`lstat`)."""
    try:
        fd = open_dir(root, path.parts, path)
    except (FileNotFoundError, NotADirectoryError):  # removed since it was scanned
        return []
    described: list[ListEntry] = []
    try:
        for name in names:
            try:
                st = lstat_at(fd, name)
            except OSError:  # vanished meanwhile
                continue
            if stat.S_ISDIR(st.st_mode):
                described.append(ListEntry(name=name, is_dir=True))
            elif stat.S_ISREG(st.st_mode):
                described.append(ListEntry(name=name, is_dir=False, size=st.st_size))
    finally:
        os.close(fd)
    return described
