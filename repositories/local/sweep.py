"""Sweeping abandoned uploads: stale named staging files, and multipart uploads left unfinished."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from repositories.local.multipart import MULTIPART_DIR_NAME


def sweep_staging(staging_dir: Path, older_than_s: float) -> int:
    """Remove stale staging files and multipart uploads whose newest part is stale."""
    cutoff = time.time() - older_than_s
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in list(os.scandir(staging_dir)):
            with contextlib.suppress(FileNotFoundError):
                if entry.name.endswith(".part") and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
    with contextlib.suppress(FileNotFoundError):
        for upload in list(os.scandir(staging_dir / MULTIPART_DIR_NAME)):
            with contextlib.suppress(FileNotFoundError):
                items = [upload, *os.scandir(upload.path)]  # not following `part-size`, a symlink to a number
                newest = max(item.stat(follow_symlinks=False).st_mtime for item in items)
                if newest < cutoff:
                    shutil.rmtree(upload.path, ignore_errors=True)
                    removed += 1
    return removed
