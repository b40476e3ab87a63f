"""Deleting a file, or a directory with everything below it."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from repositories.local.fs_paths import require_inside
from repositories.paths import ArtifactPath


def delete_path(root: Path, fs_path: Path, path: ArtifactPath) -> None:
    """Remove what is at `fs_path`; nothing there is no error."""
    require_inside(root, fs_path.parent, path)  # the link itself may go; what it points to may not
    try:
        st = os.lstat(fs_path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(fs_path)
    else:
        os.unlink(fs_path)
