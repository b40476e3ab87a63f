"""Artifact paths as files under the root, and the check that a path stays inside it."""

from __future__ import annotations

import os
from pathlib import Path

from repositories.errors import InvalidPath
from repositories.local.staging import STAGING_DIR_NAME
from repositories.paths import ArtifactPath


def fs_path_of(root: Path, path: ArtifactPath) -> Path:
    """Where `path` lives under `root`; the staging directory's name is refused."""
    if path.parts and path.parts[0] == STAGING_DIR_NAME:
        raise InvalidPath(str(path), f"'{STAGING_DIR_NAME}' is reserved for uploads in progress")
    return root.joinpath(*path.parts)


def require_inside(root: Path, fs_path: Path, path: ArtifactPath) -> None:
    """Refuse a path whose real location (after symlinks) leaves the root."""
    real = os.path.realpath(fs_path)
    if real != str(root) and not real.startswith(str(root) + os.sep):
        raise InvalidPath(str(path), "resolves outside the artifact destination")
