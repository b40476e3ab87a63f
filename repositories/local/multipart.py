"""Multipart uploads on disk: <staging>/mpu/<upload id>/ holds upload.json and NNNNN.<sha256>.part."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from repositories.base import UploadedPart
from repositories.errors import Conflict, NotFound
from repositories.local.staging import Staged, name_in_staging
from repositories.paths import ArtifactPath

MULTIPART_DIR_NAME = "mpu"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def upload_dir(staging_dir: Path, upload_id: str) -> Path:
    """The directory of upload `upload_id`; `NotFound` for an id this adapter cannot have made."""
    if not _UPLOAD_ID.match(upload_id):
        raise NotFound(f"upload {upload_id[:64]}")
    return staging_dir / MULTIPART_DIR_NAME / upload_id


def create_upload_dir(directory: Path, path: ArtifactPath) -> None:
    directory.mkdir(parents=True)
    try:
        (directory / "upload.json").write_text(json.dumps({"path": str(path), "created": time.time()}))
    except BaseException:  # a full disk: leave no half-made upload behind
        shutil.rmtree(directory, ignore_errors=True)
        raise


def require_upload(directory: Path, path: ArtifactPath) -> None:
    """`NotFound` unless `directory` holds an upload started for `path`."""
    try:
        recorded = json.loads((directory / "upload.json").read_text())["path"]
    except (OSError, ValueError, KeyError):
        raise NotFound(f"upload {directory.name}") from None
    if recorded != str(path):
        raise NotFound(f"upload {directory.name} for '{path}'")


def keep_part(staging_dir: Path, staged: Staged, directory: Path, number: int) -> str:
    """Move a written part into its upload's directory, replacing an earlier try; return its ETag."""
    assert staged.digests is not None  # a part's digest names its file
    etag = staged.digests.finish()
    staging = name_in_staging(staging_dir, staged)
    staged.close()
    for old in directory.glob(f"{number:05d}.*.part"):
        old.unlink(missing_ok=True)
    os.replace(staging, directory / f"{number:05d}.{etag}.part")
    return etag


def part_files(directory: Path, path: ArtifactPath, parts: Sequence[UploadedPart]) -> list[tuple[Path, int]]:
    """Each listed part's file and size, in number order; `Conflict` when one is missing."""
    require_upload(directory, path)
    found = []
    for part in sorted(parts, key=lambda item: item.number):
        try:
            if not _SHA256_HEX.match(part.etag):
                raise FileNotFoundError
            candidate = directory / f"{part.number:05d}.{part.etag}.part"
            found.append((candidate, os.stat(candidate).st_size))
        except FileNotFoundError:
            raise Conflict(f"part {part.number} of the upload is missing or its ETag differs") from None
    return found
