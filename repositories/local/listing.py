"""Listings: a directory's children in storage key order, then stat-ed a batch at a time."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from repositories.base import ListEntry
from repositories.local.fs_paths import require_inside
from repositories.local.staging import STAGING_DIR_NAME
from repositories.paths import ArtifactPath

LIST_STAT_BATCH = 512


def sorted_children(root: Path, fs_path: Path, path: ArtifactPath, start_after: str | None) -> list[str]:
    """Names of the children after `start_after` in sort-key order; stat-free for huge dirs."""
    try:
        require_inside(root, fs_path, path)
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


def describe(directory: Path, names: list[str]) -> list[ListEntry]:
    """Entries for those of `names` in `directory` that are files or directories (after symlinks)."""
    described: list[ListEntry] = []
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
